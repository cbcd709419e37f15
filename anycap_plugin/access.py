"""Who may reach a local server (`anycap serve`, `anycap view`): loopback is open, anything else
needs a key, unless the user says otherwise on purpose. Light: imported before any web stack."""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Callable
from typing import Any

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


def _host_name(header: str) -> str:
    """The name in a `Host` header: port, IPv6 brackets and a trailing dot removed, lower case."""
    name = header.strip().lower()
    if name.startswith("["):  # [::1]:8000
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    return name.rstrip(".")


class HostGuard:
    """ASGI middleware against DNS rebinding: a page on another site that points its own name at
    127.0.0.1 reaches a loopback server, but its requests carry that name in `Host`. Refused with 421:
    without a key (a loopback server), any name but the bound address, a loopback name or one given
    with `--allow-host`; with a key, any name outside `--allow-host` when some are given (the
    address and loopback names too: a keyed server behind a proxy answers to its public names). `refusal`
    makes the body (each server answers in its own error format)."""

    def __init__(
        self,
        app: Any,
        bound: str,
        allowed: tuple[str, ...] | list[str] = (),
        keyed: bool = False,
        refusal: Callable[[str], bytes] = lambda message: json.dumps({"error": message}).encode(),
    ) -> None:
        self.app, self.refusal = app, refusal
        self.allowed = {_host_name(h) for h in allowed}
        self.check = bool(self.allowed) or not keyed
        self.local = not keyed  # the bound address and loopback names pass only without a key
        if self.local:
            self.allowed |= {_host_name(bound)}

    def allows(self, header: str | None) -> bool:
        if not self.check:
            return True
        if header is None:
            return False
        name = _host_name(header)
        return name in self.allowed or (self.local and is_loopback(name))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = next((v for k, v in scope.get("headers") or () if k == b"host"), None)
            if not self.allows(None if host is None else host.decode("latin-1")):
                body = self.refusal(
                    f"This server does not answer to the name {(host or b'').decode('latin-1')!r}: "
                    "open it by its address, or start it with --allow-host NAME."
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 421,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
