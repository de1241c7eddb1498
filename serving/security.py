"""API keys: header ``X-API-Key``, each key with its scopes (``RETAIN_API_KEYS``).

Scopes:

- ``score``: ``POST /v1/score``, ``GET /v1/customers/{customer_id}``, ``GET /v1/model``;
- ``export``: segment exports;
- ``admin``: ``POST /v1/admin/reload``;
- ``metrics``: ``GET /metrics`` (give the Prometheus scraper a key with only this scope).

``/healthz`` and ``/readyz`` need no key: orchestrators probe them without credentials, and
they tell nothing about customers or the model. A missing or unknown key gets 401, a key
without the route's scope 403. Keys are compared in constant time against every configured
key (no early exit, so timing does not tell which or how many keys match) and are never logged.

With no key configured the service refuses to start, unless ``RETAIN_ALLOW_NO_AUTH=true``
(local development and the demo only): then every request is allowed and a warning is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

Scope = Literal["score", "export", "admin", "metrics"]
SCOPES: tuple[str, ...] = get_args(Scope)
API_KEY_HEADER = "X-API-Key"

log = logging.getLogger(__name__)

# auto_error=False: a missing key must give our 401 (with WWW-Authenticate), not FastAPI's.
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="An API key from RETAIN_API_KEYS")


class AuthConfigError(RuntimeError):
    """RETAIN_API_KEYS is malformed, or missing without RETAIN_ALLOW_NO_AUTH."""


def _digest(key: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison's time independent of key lengths.
    return hashlib.sha256(key.encode("utf-8")).digest()


def parse_api_keys(text: str) -> dict[str, frozenset[str]]:
    """``RETAIN_API_KEYS`` (JSON: key -> scopes). Messages never quote a key."""
    try:
        parsed = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        raise AuthConfigError("RETAIN_API_KEYS is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise AuthConfigError('RETAIN_API_KEYS must be a JSON object: {"key": ["score"], ...}')
    keys: dict[str, frozenset[str]] = {}
    for number, (key, scopes) in enumerate(parsed.items(), start=1):
        if not key.strip():
            raise AuthConfigError(f"RETAIN_API_KEYS: key #{number} is empty")
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise AuthConfigError(f"RETAIN_API_KEYS: key #{number}: scopes must be a list of names")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise AuthConfigError(f"RETAIN_API_KEYS: key #{number}: unknown scope(s) {unknown} "
                                  f"(known: {', '.join(SCOPES)})")
        keys[key] = frozenset(scopes)
    return keys


class KeyRing:
    """The configured keys (as digests) and their scopes."""

    def __init__(self, api_keys: SecretStr | None, allow_no_auth: bool = False) -> None:
        keys = parse_api_keys(api_keys.get_secret_value() if api_keys else "")
        if not keys and not allow_no_auth:
            raise AuthConfigError(
                "no API keys configured: set RETAIN_API_KEYS to a JSON object of key -> scopes, "
                'e.g. {"a-long-random-key": ["score"]}, or RETAIN_ALLOW_NO_AUTH=true for local '
                "development only"
            )
        self.open = not keys
        self._entries = [(_digest(key), scopes) for key, scopes in keys.items()]
        if self.open:
            log.warning("serving WITHOUT authentication (RETAIN_ALLOW_NO_AUTH=true): dev only")

    def scopes(self, key: str | None) -> frozenset[str] | None:
        """The key's scopes, or None when it is not a configured key."""
        if not key:
            return None
        presented = _digest(key)
        found: frozenset[str] | None = None
        for digest, scopes in self._entries:
            if hmac.compare_digest(presented, digest):
                found = scopes
        return found

    def digest(self, key: str | None) -> bytes | None:
        """The SHA-256 of a configured key (what the ring keeps); None for any other key."""
        return _digest(key) if key and self.scopes(key) is not None else None

    def entries(self) -> list[tuple[bytes, frozenset[str]]]:
        """(digest, scopes) of every configured key."""
        return list(self._entries)

    def authorize(self, key: str | None, scope: Scope) -> None:
        if self.open:
            return
        scopes = self.scopes(key)
        if scopes is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "missing or invalid API key (header X-API-Key)",
                headers={"WWW-Authenticate": f'APIKey header="{API_KEY_HEADER}"'},
            )
        if scope not in scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"this API key lacks the '{scope}' scope")


def require(scope: Scope) -> Any:
    """A route dependency: a valid key with ``scope``."""

    # async: a check this cheap must not take a threadpool slot.
    async def check(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> None:
        request.app.state.service.keyring.authorize(key, scope)

    check.scope = scope  # type: ignore[attr-defined]  # read by routes that check it themselves
    return Depends(check)


def presented_key(request: Request) -> str | None:
    """The request's API key as ``api_key_header`` reads it (an empty header is no key)."""
    return request.headers.get(API_KEY_HEADER) or None


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, default ports filled in; None otherwise
    (including the ``null`` origin browsers send from sandboxes and privacy-sensitive contexts)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def same_origin(request: Request) -> bool:
    """Whether a state-changing request (a form POST) comes from a page of this server: its
    ``Origin``, or ``Referer`` when there is no Origin, names the server's own origin (scheme,
    host and port as the client addressed it). Stops login CSRF: another site's form posting a
    key of its own so the victim works in the attacker's session.

    A request with neither header passes: browsers send Origin with every POST (``null`` when a
    referrer policy or sandbox hides it, which is refused), so only non-browser clients, which no
    other site can drive, send neither. Behind a TLS-terminating proxy the server must see the
    original scheme (X-Forwarded-Proto from a trusted proxy, uvicorn's --forwarded-allow-ips),
    or https pages would not match."""
    own = _origin(str(request.base_url))
    origin = request.headers.get("origin")
    if origin is not None:
        return own is not None and _origin(origin) == own
    referer = request.headers.get("referer")
    if referer is not None:
        return own is not None and _origin(referer) == own
    return True
