"""Who may reach a local server (`anycap serve`, `anycap view`): loopback is open, anything else
needs a key, unless the user says otherwise on purpose. Light: imported before any web stack."""

from __future__ import annotations

import hmac
import ipaddress

from .errors import OpenServerError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_rule(host: str, api_key: str | None, no_auth: bool) -> str:
    """What the log says about access; refuses an open server nobody asked for (`OpenServerError`)."""
    if api_key and no_auth:
        raise OpenServerError(
            "--no-auth and --api-key contradict each other.", hint="Drop one of them."
        )
    if api_key:
        return f"auth: an API key is required on every request (bound to {host})"
    if is_loopback(host):
        return f"auth: none; bound to {host}, reachable from this machine only"
    if not no_auth:
        raise OpenServerError(
            f"Refusing to serve on {host} without an API key: anyone who can reach the port could use the model.",
            hint="Pass --api-key (or set ANYCAP_API_KEY), or --no-auth to serve openly on purpose.",
        )
    return f"auth: NONE on {host} (--no-auth): anyone who can reach the port can use the model"


def bearer_matches(header: str, key: bytes) -> bool:
    """An `Authorization: Bearer KEY` header holds `key` (compared in constant time)."""
    token = header[7:] if header[:7].lower() == "bearer " else ""
    return hmac.compare_digest(token.encode(), key)
