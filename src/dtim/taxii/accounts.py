"""TAXII consumer accounts: who may read which collections, at which privacy level.

Accounts live in one JSON file in the node home (mode 0600), managed by
``dtim taxii users add|remove|list``; passwords are stored as Argon2id hashes
(:mod:`dtim.crypto.passwords`). A consumer may instead present a client
certificate whose SHA-256 fingerprint is listed on its account.

Argon2 is slow on purpose, and a TAXII client sends its password with every
page it fetches, so a successful check is remembered for a few minutes as
an HMAC under a key that exists only in this process.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import orjson

from dtim.crypto.passwords import hash_password, verify_password
from dtim.errors import ConfigError, ValidationError
from dtim.model import Tlp

log = logging.getLogger("dtim.taxii")

PRIVACY_LEVELS = ("strict", "moderate", "open")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
CACHE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Account:
    """A TAXII consumer.

    Attributes:
        name: the login name, also the audience name the privacy filter sees.
        password_hash: Argon2id hash, empty for certificate-only accounts.
        level: privacy level of everything this consumer reads.
        tlps: TLP levels it may read (CLEAR is always readable).
        groups: recipient groups it belongs to (for AMBER/RED recipients).
        can_write: may POST to the inbox collection.
        cert_fingerprints: SHA-256 fingerprints (hex) of accepted client certificates.
    """

    name: str
    password_hash: str = ""
    level: str = "moderate"
    tlps: tuple[Tlp, ...] = (Tlp.CLEAR, Tlp.GREEN)
    groups: tuple[str, ...] = ()
    can_write: bool = False
    cert_fingerprints: tuple[str, ...] = field(default=())

    def may_read(self, tlp: Tlp) -> bool:
        """True when this account may read objects marked ``tlp``."""
        return tlp is Tlp.CLEAR or tlp in self.tlps


def make_account(
    name: str,
    password: str | None,
    *,
    level: str = "moderate",
    tlps: Iterable[str] = ("clear", "green"),
    groups: Iterable[str] = (),
    can_write: bool = False,
    cert_fingerprints: Iterable[str] = (),
) -> Account:
    """Validate and build an account, hashing the password.

    Raises:
        ValidationError: a bad name, level, TLP or fingerprint, or no way to log in.
        CryptoError: the password is too short.
    """
    if not _NAME.match(name):
        raise ValidationError(
            "name", f"{name!r}: letters, digits and _ . @ - only, 1-64 characters"
        )
    if level not in PRIVACY_LEVELS:
        raise ValidationError(
            "level", f"unknown privacy level {level!r} (expected {', '.join(PRIVACY_LEVELS)})"
        )
    prints = tuple(sorted({fp.replace(":", "").lower() for fp in cert_fingerprints}))
    for fp in prints:
        if not _FINGERPRINT.match(fp):
            raise ValidationError(
                "cert_fingerprint", f"{fp!r} is not a SHA-256 fingerprint (64 hex digits)"
            )
    if not password and not prints:
        raise ValidationError(
            "password", "an account needs a password or a client certificate fingerprint"
        )
    return Account(
        name=name,
        password_hash=hash_password(password) if password else "",
        level=level,
        tlps=tuple(sorted({Tlp.parse(t) for t in tlps} | {Tlp.CLEAR}, key=lambda t: t.rank)),
        groups=tuple(sorted({g.strip() for g in groups if g.strip()})),
        can_write=can_write,
        cert_fingerprints=prints,
    )


class AccountBook:
    """The accounts file: load, change, save (atomically, mode 0600), authenticate."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._accounts: dict[str, Account] = {}
        self._by_cert: dict[str, Account] = {}
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[str, tuple[bytes, float]] = {}
        self._loaded: tuple[int, int, int] | None = None

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def refresh(self) -> None:
        """Reload when ``dtim taxii users`` changed the file; keep the old accounts if the new
        file is unreadable (a running server must not lock everyone out on a bad edit)."""
        if self._signature() == self._loaded:
            return
        try:
            self.load()
        except ConfigError as exc:
            log.warning("keeping the TAXII accounts loaded before: %s", exc)
            self._loaded = self._signature()

    def load(self) -> AccountBook:
        """Read the file (a missing file means no accounts).

        Raises:
            ConfigError: the file is unreadable or malformed.
        """
        signature = self._signature()
        if not self.path.exists():
            self._set([])
            self._loaded = signature
            return self
        try:
            raw = orjson.loads(self.path.read_bytes())
            accounts = [_account_from_json(item) for item in raw["accounts"]]
        except (
            OSError,
            orjson.JSONDecodeError,
            KeyError,
            TypeError,
            ValueError,
            ValidationError,
        ) as exc:
            raise ConfigError(f"cannot read TAXII accounts: {exc}", path=str(self.path)) from None
        self._set(accounts)
        self._loaded = signature
        return self

    def _set(self, accounts: list[Account]) -> None:
        self._accounts = {a.name: a for a in accounts}
        self._by_cert = {fp: a for a in accounts for fp in a.cert_fingerprints}
        self._verified.clear()

    def save(self) -> None:
        """Write the file atomically with mode 0600."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "accounts": [
                _account_to_json(a) for a in sorted(self._accounts.values(), key=lambda a: a.name)
            ]
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.path)

    def add(self, account: Account, *, replace_existing: bool = False) -> None:
        """Add an account.

        Raises:
            ValidationError: the name is taken and ``replace_existing`` is False.
        """
        if account.name in self._accounts and not replace_existing:
            raise ValidationError("name", f"account {account.name!r} already exists")
        self._set([*(a for a in self._accounts.values() if a.name != account.name), account])

    def remove(self, name: str) -> None:
        """Remove an account.

        Raises:
            ValidationError: there is no such account.
        """
        if name not in self._accounts:
            raise ValidationError("name", f"no account {name!r}")
        self._set([a for a in self._accounts.values() if a.name != name])

    def accounts(self) -> list[Account]:
        """Every account, by name."""
        return sorted(self._accounts.values(), key=lambda a: a.name)

    def get(self, name: str) -> Account | None:
        """One account by name."""
        return self._accounts.get(name)

    def check_password(self, name: str, password: str) -> Account | None:
        """The account when ``password`` is right, else None (remembering successes briefly)."""
        self.refresh()
        account = self._accounts.get(name)
        if account is None or not account.password_hash:
            return None
        token = hmac.new(self._cache_key, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        cached = self._verified.get(name)
        now = time.monotonic()
        if cached is not None and cached[1] > now and hmac.compare_digest(cached[0], token):
            return account
        if not verify_password(account.password_hash, password):
            return None
        self._verified[name] = (token, now + CACHE_SECONDS)
        return account

    def by_certificate(self, fingerprint: str) -> Account | None:
        """The account that lists this client-certificate fingerprint."""
        self.refresh()
        return self._by_cert.get(fingerprint.replace(":", "").lower())


def _account_to_json(account: Account) -> dict[str, object]:
    data = asdict(account)
    data["tlps"] = [t.value for t in account.tlps]
    data["groups"] = list(account.groups)
    data["cert_fingerprints"] = list(account.cert_fingerprints)
    return data


def _account_from_json(raw: dict[str, object]) -> Account:
    level = str(raw.get("level", "moderate"))
    if level not in PRIVACY_LEVELS:
        raise ValidationError("level", f"unknown privacy level {level!r}")
    tlps = raw.get("tlps", [])
    groups = raw.get("groups", [])
    prints = raw.get("cert_fingerprints", [])
    return replace(
        Account(name=str(raw["name"])),
        password_hash=str(raw.get("password_hash", "")),
        level=level,
        tlps=tuple(Tlp.parse(str(t)) for t in tlps) if isinstance(tlps, list) else (Tlp.CLEAR,),
        groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
        can_write=raw.get("can_write") is True,
        cert_fingerprints=tuple(str(p) for p in prints) if isinstance(prints, list) else (),
    )
