"""Build the admin app of a node from its home: keys, audit log, privacy policy, decay model.

``service.build_admin_app`` calls :func:`node_admin_app`; tests do too, so the
browser tests run the same wiring as ``dtim node run``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from fastapi import APIRouter, FastAPI

from dtim.aging import DecayModel
from dtim.api.admin_ops import AdminContext, PeerControl, StatusProvider
from dtim.api.auth import AuthPolicy
from dtim.config import NodeHome, describe_settings
from dtim.crypto.auditlog import AuditLog
from dtim.crypto.identity import load_identity
from dtim.crypto.keyring import Keyring
from dtim.model import Clock, SystemClock
from dtim.privacy import (
    PrivacyFilter,
    PrivacyLevel,
    PrivacyPolicy,
    TimestampPrecision,
    load_warninglist_file,
)
from dtim.store import Store
from dtim.store.leader import Spawn
from dtim.web.app import create_admin_app


def privacy_filter_for(home: NodeHome) -> PrivacyFilter:
    """The node's privacy filter from ``[privacy]`` (the same policy gossip applies).

    Raises:
        ConfigError: a bad level, precision, network or domain.
    """
    section = home.settings.privacy
    policy = PrivacyPolicy(
        level=PrivacyLevel.parse(section.level),
        allow_custom_fields=section.allow_custom_fields,
        allowed_custom_fields=frozenset(section.allowed_custom_fields),
        own_networks=tuple(section.own_networks),
        own_domains=tuple(section.own_domains),
        org_names=tuple(section.org_names),
        timestamp_precision=TimestampPrecision.parse(section.timestamp_precision),
        dp_epsilon=section.dp_epsilon,
    )
    extra = [load_warninglist_file(home.path(name)) for name in section.warninglists]
    return PrivacyFilter(policy, extra_lists=extra)


def decay_model_for(home: NodeHome) -> DecayModel:
    """The decay model from ``[aging]`` (lifetimes in days, ``decay_speed`` as the shape)."""
    aging = home.settings.aging
    lifetimes = {
        f.name: float(getattr(aging, f.name)) for f in fields(aging) if f.name != "decay_speed"
    }
    return DecayModel.from_days(lifetimes, delta=aging.decay_speed)


def admin_context_for(
    home: NodeHome,
    store: Store,
    *,
    clock: Clock | None = None,
    peer_control: PeerControl | None = None,
    gossip_status: StatusProvider | None = None,
    registry_status: StatusProvider | None = None,
    spawn: Spawn | None = None,
) -> AdminContext:
    """Everything the dashboard needs, read from the node home (does file I/O).

    Raises:
        CryptoError: the identity or keyring is unusable.
        ConfigError: a bad privacy or aging setting.
    """
    chosen = clock or SystemClock()
    identity = load_identity(home.keys_dir)
    keyring = Keyring.load_or_create(home.keys_dir, now=chosen.now())
    return AdminContext(
        store=store,
        keys_dir=home.keys_dir,
        certs_dir=home.certs_dir,
        keyring=keyring,
        audit=AuditLog(home.encrypted_logs, keyring, chosen),
        node_id=identity.node_id,
        fingerprint=identity.fingerprint,
        settings=describe_settings(home.settings),
        privacy=privacy_filter_for(home),
        decay=decay_model_for(home),
        clock=chosen,
        started=chosen.now(),
        key_rotation_days=home.settings.security.key_rotation_days,
        registry_url=home.settings.network.registry_url,
        peer_control=peer_control,
        gossip_status=gossip_status,
        registry_status=registry_status,
        issuer=identity,
        spawn=spawn,
    )


def node_admin_app(
    home: NodeHome,
    store: Store,
    *,
    routers: Sequence[APIRouter] = (),
    tls: bool = False,
    clock: Clock | None = None,
    peer_control: PeerControl | None = None,
    gossip_status: StatusProvider | None = None,
    registry_status: StatusProvider | None = None,
    spawn: Spawn | None = None,
) -> FastAPI:
    """The admin listener's app for the node at ``home`` (dashboard, admin API, ``routers``).

    Args:
        tls: the listener serves HTTPS, so the session cookie is marked Secure.
    """
    context = admin_context_for(
        home,
        store,
        clock=clock,
        peer_control=peer_control,
        gossip_status=gossip_status,
        registry_status=registry_status,
        spawn=spawn,
    )
    return create_admin_app(context, auth_policy=AuthPolicy(secure_cookie=tls), routers=routers)
