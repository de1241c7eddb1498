"""Server-side sessions of the marketers' page (``/ui``).

Signing in with an API key starts a session; the browser keeps only its id, signed, in a cookie.
The key itself is never stored: the session names the key by an HMAC of its digest under the
sessions' secret. (That secret sits in the same database, so whoever copies the database could
test guesses of a key against it, as against any hash: API keys must be long random strings
anyway.) Every request looks that key's scopes up in the running configuration: a key removed
from ``RETAIN_API_KEYS``, or left without the ``export`` scope, ends its sessions at the next
request (deleted, so re-adding the key later does not revive them).

Sessions live in the score store's database (table ``ui_sessions``, created on first use beside
the scores), not in process memory: every worker of ``retain serve --workers N`` and a restarted
server see the same sessions, and signing out ends a session everywhere, so a copied cookie
stops working. The table holds a SHA-256 of each session id, never the id: a copy of the
database cannot be replayed as a cookie.

Cookie value: ``<session id>.<signature>`` (itsdangerous, HMAC-SHA256). A forged or garbled
cookie is refused before any database read. The secret is 32 random bytes made by the first
server that needs it and kept in the table ``ui_session_secret``, so all workers share it;
deleting that row and the sessions signs everybody out.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from itsdangerous import BadSignature, Signer

if TYPE_CHECKING:
    from retain.serving.deps import Service

log = logging.getLogger(__name__)

TABLE = "ui_sessions"
SECRET_TABLE = "ui_session_secret"
DEFAULT_LIFETIME_SECONDS = 12 * 3600
_metadata = sa.MetaData()
_sessions = sa.Table(
    TABLE, _metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),  # Unix seconds: no time zones
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
)
_secret = sa.Table(
    SECRET_TABLE, _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("secret", sa.String(64), nullable=False),  # hex
)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


class UISessions:
    """The page's sessions in the score store of ``service``. Reads the service's current key
    ring and store on every call. Methods block (database): call them off the event loop."""

    def __init__(self, service: Service, scope: str,
                 lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS) -> None:
        self.service = service
        self.scope = scope  # what a session is for: its key must keep this scope
        self.lifetime_seconds = lifetime_seconds
        self._secret: bytes | None = None

    def _signer(self) -> Signer:
        return Signer(self._ready(), salt="retain.ui.session", digest_method=hashlib.sha256)

    def _key_id(self, digest: bytes) -> str:
        return hmac.new(self._ready(), b"key:" + digest, hashlib.sha256).hexdigest()

    def _scopes_of(self, key_id: str) -> frozenset[str] | None:
        """The scopes of the configured key with this id; None once it is not configured.
        Compares with every key, no early exit."""
        found: frozenset[str] | None = None
        for digest, scopes in self.service.keyring.entries():
            if hmac.compare_digest(self._key_id(digest), key_id):
                found = scopes
        return found

    def _session_id(self, cookie: str | None) -> str | None:
        if not cookie or len(cookie) > 200:
            return None
        try:
            return self._signer().unsign(cookie).decode("ascii")
        except (BadSignature, UnicodeError):
            return None

    def _ready(self) -> bytes:
        """The tables exist and the shared secret is read (made by the first worker)."""
        if self._secret is not None:
            return self._secret
        store = self.service.store
        try:
            with store.write_connection() as conn, conn.begin():
                _metadata.create_all(conn, checkfirst=True)
                if conn.scalar(sa.select(_secret.c.secret)) is None:
                    conn.execute(sa.insert(_secret).values(id=1, secret=secrets.token_hex(32)))
        except sa.exc.DatabaseError:
            # Another worker made the tables or the secret between our check and our write
            # (PostgreSQL); SQLite's write lock serializes this. Reading below tells.
            log.info("ui sessions: tables or secret made by another process meanwhile")
        with store.engine.connect() as conn:
            stored = conn.scalar(sa.select(_secret.c.secret).where(_secret.c.id == 1))
        if stored is None:
            raise RuntimeError("ui sessions: no session secret in the score store")
        self._secret = bytes.fromhex(stored)
        return self._secret

    def start(self, key: str) -> str:
        """A new session for a configured key; returns the cookie value. Expired sessions are
        dropped on the way."""
        digest = self.service.keyring.digest(key)
        if digest is None or self.scope not in (self.service.keyring.scopes(key) or ()):
            raise ValueError(f"not a configured API key with the '{self.scope}' scope")
        key_id = self._key_id(digest)
        session_id = secrets.token_urlsafe(32)
        now = int(time.time())
        with self.service.store.write_connection() as conn, conn.begin():
            conn.execute(sa.delete(_sessions).where(_sessions.c.expires_at <= now))
            conn.execute(sa.insert(_sessions).values(
                session_hash=_hash(session_id), key_id=key_id, created_at=now,
                expires_at=now + self.lifetime_seconds))
        return self._signer().sign(session_id).decode("ascii")

    def valid(self, cookie: str | None) -> bool:
        """Whether the cookie names a live session whose key is configured with the scope.
        False for no cookie, a bad signature, an unknown, ended or expired session; a session
        whose key was removed or lost the scope is ended on the way."""
        session_id = self._session_id(cookie)
        if session_id is None:
            return False
        hashed = _hash(session_id)
        with self.service.store.engine.connect() as conn:
            key_id = conn.scalar(sa.select(_sessions.c.key_id).where(
                _sessions.c.session_hash == hashed, _sessions.c.expires_at > int(time.time())))
        if key_id is None:
            return False
        scopes = self._scopes_of(key_id)
        if scopes is None or self.scope not in scopes:
            log.info("ui: a session whose key is no longer configured with '%s' was ended",
                     self.scope)
            self._delete(hashed)
            return False
        return True

    def end(self, cookie: str | None) -> bool:
        """Ends the cookie's session (signing out); False when there was none to end."""
        session_id = self._session_id(cookie)
        if session_id is None:
            return False
        return self._delete(_hash(session_id))

    def _delete(self, hashed: str) -> bool:
        with self.service.store.write_connection() as conn, conn.begin():
            deleted = conn.execute(sa.delete(_sessions).where(
                _sessions.c.session_hash == hashed)).rowcount
        return bool(deleted)

    def count(self) -> int:
        """Live (unexpired) sessions, for tests and operators."""
        self._ready()
        with self.service.store.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(_sessions).where(
                _sessions.c.expires_at > int(time.time()))) or 0)
