"""A real node home with a seeded store and its admin app, for the API and browser tests."""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from fastapi import FastAPI

from dtim.api.auth import ADMIN_PASSWORD_FILE
from dtim.config import NodeHome, load_settings, render_config
from dtim.crypto.evidence import seal_evidence
from dtim.crypto.identity import NodeIdentity
from dtim.crypto.keyfiles import write_secret
from dtim.crypto.keyring import Keyring
from dtim.model import Evidence, Peer, PeerId, PeerStatus, Sighting, make_indicator
from dtim.service import initialise_home
from dtim.store import Store
from dtim.web.node import node_admin_app

PASSWORD = "correct horse battery staple"  # the test node's admin password
NOW = datetime.now(UTC)


@dataclass(frozen=True)
class SeededPeer:
    """A pending peer and the key it holds."""

    identity: NodeIdentity

    @property
    def id(self) -> str:
        """Its node id."""
        return self.identity.node_id

    @property
    def fingerprint(self) -> str:
        """Its key fingerprint."""
        return self.identity.fingerprint


_TEMPLATES: dict[str, Path] = {}
# Cheap Argon2id parameters for the test password: the stored hash carries its own
# parameters, so verification is fast while the code path is the real one.
_FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def make_home(root: Path, environ: dict[str, str] | None = None) -> NodeHome:
    """A node home at ``root`` with the test admin password (copied from a per-process template)."""
    template = _TEMPLATES.get("home")
    if template is None:
        template = Path(tempfile.mkdtemp(prefix="dtim-web-template-")) / "home"
        initialise_home(
            NodeHome(root=template, settings=load_settings(template, environ={}).settings),
            host="127.0.0.1",
        )
        (template / "config").mkdir(parents=True, exist_ok=True)
        (template / "config" / "dtim.toml").write_text(render_config(), encoding="utf-8")
        write_secret(template / "keys" / ADMIN_PASSWORD_FILE, _FAST_HASHER.hash(PASSWORD).encode())
        _TEMPLATES["home"] = template
        atexit.register(shutil.rmtree, template.parent, ignore_errors=True)
    shutil.copytree(template, root)
    return NodeHome(root=root, settings=load_settings(root, environ=environ or {}).settings)


async def seed(home: NodeHome, store: Store) -> SeededPeer:
    """Indicators from several sources over the last days, a sighting with evidence, peers."""
    items = []
    sources = ["ufw", "fail2ban", "nginx_access", "suricata", "peer-mesh"]
    for n in range(120):
        at = NOW - timedelta(hours=n * 1.3)
        items.append(
            make_indicator(
                f"198.51.100.{n}",
                now=at,
                confidence=(n * 7) % 101,
                sources=[sources[n % len(sources)]],
                tlp="amber" if n % 10 == 0 else "green",
                recipients=["partners"] if n % 10 == 0 else [],
            )
        )
    items.append(
        make_indicator(
            "evil.example", now=NOW, confidence=85, sources=["nginx_access"], tags=["phishing"]
        )
    )
    items.append(make_indicator("203.0.113.0/24", now=NOW, confidence=60, sources=["peer-mesh"]))
    await store.upsert_indicators(items)
    keyring = Keyring.load(home.keys_dir)
    sighted = make_indicator(
        "185.220.101.4", now=NOW, confidence=75, sources=["fail2ban"], tags=["ssh"]
    )
    sighting = Sighting(
        indicator=sighted,
        source="fail2ban",
        rule="sshd",
        observed_at=NOW,
        count=3,
        evidence=Evidence(
            lines=("Ban 185.220.101.4 on host db-internal-7",),
            hosts=("db-internal-7",),
            users=("root",),
        ),
    )
    await store.record_sightings(
        [sighting], [seal_evidence(keyring, sighting.evidence, context=sighted.id)]
    )
    identity = NodeIdentity.generate()
    await store.save_peer(
        Peer(
            id=PeerId(identity.node_id),
            endpoint="https://peer-one.example:3030",
            public_key=identity.public_key_b64,
            fingerprint=identity.fingerprint,
            status=PeerStatus.PENDING,
            added_at=NOW - timedelta(hours=2),
            groups=("partners",),
            source="registry",
        )
    )
    return SeededPeer(identity)


def admin_app(home: NodeHome, store: Store, *, tls: bool = False) -> FastAPI:
    """The node's admin app, as ``dtim node run`` builds it."""
    return node_admin_app(home, store, tls=tls)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_in(html: str) -> str:
    """The CSRF token embedded in a page's forms."""
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def log_in(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    """Fetch the login form and post the password; returns the POST's response."""
    form = await client.get("/login")
    return await client.post(
        "/login", data={"password": password, "csrf_token": csrf_in(form.text), "next": "/"}
    )
