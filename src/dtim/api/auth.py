"""Admin authentication: password login, sessions, CSRF tokens, lock-out and API tokens.

* The admin password is an Argon2id hash in ``keys/admin.argon2`` (``dtim init`` or
  ``dtim admin passwd``). Changing it ends every session opened before.
* A login opens a server-side session: a random id in a cookie that is HttpOnly,
  SameSite=Strict and Secure when the listener is TLS, plus a per-session CSRF
  token that every state-changing request made with the cookie must echo back
  (form field ``csrf_token`` or header ``X-CSRF-Token``).
* After ``max_failures`` wrong passwords from one client, logins from it are
  refused for ``lockout_seconds`` (even with the right password).
* API tokens (``dtim admin token create``) are random bearer secrets; only their
  SHA-256 is stored, in ``keys/admin-tokens.json`` (0600). They need no CSRF token:
  a browser never sends them on its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from dtim.crypto.keyfiles import read_secret, write_secret
from dtim.crypto.passwords import hash_password, verify_password
from dtim.errors import CryptoError, DTIMError, ValidationError
from dtim.model.clock import Clock, SystemClock, iso

ADMIN_PASSWORD_FILE = "admin.argon2"  # noqa: S105  # nosec B105  # a file name, not a password
ADMIN_TOKENS_FILE = "admin-tokens.json"
SESSION_COOKIE = "dtim_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
TOKEN_PREFIX = "dtim_"  # noqa: S105  # nosec B105  # marks DTIM tokens in secret scanners


class LoginRefused(DTIMError):
    """A login attempt failed: wrong password, or the client is locked out.

    Attributes:
        retry_after: seconds until the lock-out ends (0 when not locked out).
    """

    def __init__(self, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """Session and lock-out limits."""

    max_failures: int = 5
    lockout_seconds: int = 300
    idle_seconds: int = 3600
    absolute_seconds: int = 12 * 3600
    secure_cookie: bool = False


@dataclass(slots=True)
class Session:
    """One logged-in browser."""

    id: str = field(repr=False)
    csrf: str = field(repr=False)
    created: datetime
    last_used: datetime


@dataclass(slots=True)
class _Failures:
    count: int = 0
    locked_until: datetime | None = None


def set_admin_password(keys_dir: Path, password: str) -> None:
    """Store the Argon2id hash of a new admin password (mode 0600).

    Raises:
        CryptoError: the password is too short, or the file cannot be written.
    """
    write_secret(keys_dir / ADMIN_PASSWORD_FILE, hash_password(password).encode())


ADMIN_SCOPE = "admin"
BLOCKLIST_SCOPE = "blocklist"
"""A token of this scope reads ``/blocklist.txt`` and nothing else (firewalls put it in a URL)."""
TOKEN_SCOPES = (ADMIN_SCOPE, BLOCKLIST_SCOPE)


def create_api_token(keys_dir: Path, name: str, *, now: datetime, scope: str = ADMIN_SCOPE) -> str:
    """Make a new API token, store its hash, and return it (shown once).

    Args:
        scope: ``admin`` (the whole admin API) or ``blocklist`` (the firewall blocklist only).

    Raises:
        CryptoError: the token file is unreadable or cannot be written.
        ValidationError: an unknown scope.
    """
    if scope not in TOKEN_SCOPES:
        raise ValidationError("scope", f"unknown token scope {scope!r} (one of {TOKEN_SCOPES})")
    label = name.strip() or "token"
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    entries = _read_tokens(keys_dir / ADMIN_TOKENS_FILE)
    entries.append({"name": label, "sha256": _digest(token), "created": iso(now), "scope": scope})
    write_secret(keys_dir / ADMIN_TOKENS_FILE, orjson.dumps(entries, option=orjson.OPT_INDENT_2))
    return token


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _read_tokens(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    try:
        entries = orjson.loads(read_secret(path, "admin API tokens"))
    except orjson.JSONDecodeError:
        raise CryptoError(f"{path}: admin API tokens are not JSON") from None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("sha256"), str) for e in entries
    ):
        raise CryptoError(f"{path}: expected a list of {{name, sha256, created}}")
    return entries


class AdminAuth:
    """Checks passwords, API tokens and CSRF tokens; holds sessions in memory.

    Sessions do not survive a restart (log in again). The constructor does no I/O.
    """

    def __init__(
        self, keys_dir: Path, policy: AuthPolicy | None = None, clock: Clock | None = None
    ) -> None:
        self._keys_dir = keys_dir
        self.policy = policy or AuthPolicy()
        self._clock = clock or SystemClock()
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, _Failures] = {}
        self._tokens: dict[str, str] = {}  # SHA-256 of a token -> its scope
        self._tokens_mtime: float | None = None

    @property
    def password_file(self) -> Path:
        """Where the admin password hash lives."""
        return self._keys_dir / ADMIN_PASSWORD_FILE

    async def login(self, password: str, client: str) -> Session:
        """Open a session when ``password`` is right and ``client`` is not locked out.

        Raises:
            LoginRefused: wrong password, locked out, or no password set.
        """
        now = self._clock.now()
        failures = self._failures.setdefault(client, _Failures())
        if failures.locked_until is not None and now < failures.locked_until:
            wait = int((failures.locked_until - now).total_seconds()) + 1
            raise LoginRefused(f"too many failed logins; try again in {wait} s", wait)
        try:
            stored = read_secret(self.password_file, "admin password hash").decode().strip()
        except CryptoError as exc:
            raise LoginRefused(f"login is unavailable: {exc}") from exc
        # Argon2 is deliberately slow: keep it off the event loop.
        ok = await asyncio.to_thread(verify_password, stored, password)
        if not ok:
            failures.count += 1
            if failures.count >= self.policy.max_failures:
                failures.locked_until = now + timedelta(seconds=self.policy.lockout_seconds)
                failures.count = 0
                raise LoginRefused(
                    f"too many failed logins; locked for {self.policy.lockout_seconds} s",
                    self.policy.lockout_seconds,
                )
            raise LoginRefused("wrong password")
        self._failures.pop(client, None)
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        self._sessions[session.id] = session
        return session

    def session(self, session_id: str | None) -> Session | None:
        """The live session with this id (refreshing its idle timer), or None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock.now()
        idle = (now - session.last_used).total_seconds()
        age = (now - session.created).total_seconds()
        if (
            idle > self.policy.idle_seconds
            or age > self.policy.absolute_seconds
            or self._stale(session)
        ):
            self._sessions.pop(session_id, None)
            return None
        session.last_used = now
        return session

    def _stale(self, session: Session) -> bool:
        # A password changed by `dtim admin passwd` ends the sessions opened before it.
        try:
            changed = self.password_file.stat().st_mtime
        except OSError:
            return True
        return changed > session.created.timestamp()

    def logout(self, session_id: str | None) -> None:
        """End a session (no error when it is already gone)."""
        if session_id:
            self._sessions.pop(session_id, None)

    @staticmethod
    def csrf_ok(session: Session, presented: str | None) -> bool:
        """True when ``presented`` is the session's CSRF token (constant time)."""
        return bool(presented) and hmac.compare_digest(session.csrf, presented or "")

    def token_ok(self, presented: str | None, scope: str = ADMIN_SCOPE) -> bool:
        """True when ``presented`` is a valid API token for ``scope`` (admin tokens fit any).

        The token file is re-read when it changes, so ``dtim admin token create``
        takes effect on a running node.
        """
        if not presented or not presented.startswith(TOKEN_PREFIX):
            return False
        path = self._keys_dir / ADMIN_TOKENS_FILE
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return False
        if mtime != self._tokens_mtime:
            try:
                self._tokens = {
                    e["sha256"]: e.get("scope", ADMIN_SCOPE) for e in _read_tokens(path)
                }
            except CryptoError:
                return False
            self._tokens_mtime = mtime
        digest = _digest(presented)
        matched = [
            kind for known, kind in self._tokens.items() if hmac.compare_digest(digest, known)
        ]
        return bool(matched) and matched[0] in (ADMIN_SCOPE, scope)
