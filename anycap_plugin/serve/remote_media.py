"""Fetching a client-named media URL without letting the client reach the server's own network.

With `--allow-remote-media`, every hop of a fetch is checked the same way before a packet leaves:
- the scheme is http or https, the host is named, and (with `--allowed-media-hosts`) the host is
  one of the allowed names or under one of them (suffix match on whole labels);
- the host is resolved once, and every address it resolves to must be public: loopback, private,
  link-local (the cloud metadata address 169.254.169.254 included), shared (100.64/10), multicast,
  reserved and unspecified addresses are refused, IPv4 and IPv6 alike, with IPv4 addresses inside
  IPv6 (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo) checked as IPv4;
- the connection goes to the address that was checked (no second lookup for DNS rebinding to
  exploit); https still verifies the certificate against the host name;
- redirects are followed by hand, at most `max_redirects`, each hop checked as above;
- the size limit holds while streaming (a declared length over it stops before reading) and the
  time limit covers the whole fetch, redirects included.
A refusal is a 403 `RequestError` with the reason; nothing was sent. The resolver and the
connector are parameters so tests can check refusals without any packet leaving the machine.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from ..errors import RequestError
from .policy import MediaPolicy

Resolver = Callable[[str, int], list[str]]
Connector = Callable[[tuple[str, int], float], socket.socket]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REDIRECTS = {301, 302, 303, 307, 308}


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolves `host` to (one lookup)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise RequestError(
            f"Cannot resolve the media host {host!r}: {e}.", code="media_fetch_failed"
        ) from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def tcp_connector(address: tuple[str, int], timeout: float) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why the server must not connect to `ip` (None: a public address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = refusal_reason(inner)
            return f"{reason} inside an IPv6 address" if reason else None
    for attribute, what in (
        ("is_unspecified", "an unspecified"),
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local"),
        ("is_multicast", "a multicast"),
        ("is_private", "a private"),
        ("is_reserved", "a reserved"),
    ):
        if getattr(ip, attribute):
            return f"{what} address"
    if not ip.is_global:
        return "a non-public address"
    return None


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """No list: every host; else the host is an allowed name or a subdomain of one."""
    if not allowed:
        return True
    host = host.lower().rstrip(".")
    return any(host == a or host.endswith("." + a) for a in (s.lower().strip(".") for s in allowed))


def _refused(url: str, why: str) -> RequestError:
    return RequestError(
        f"Remote media URL refused: {why} ({_redact(url)}).",
        status=403,
        code="remote_media_refused",
        hint="Send the media as a data URL, or name a public host the server allows.",
    )


def _too_slow() -> RequestError:
    return RequestError(
        "Fetching the media URL took too long.", status=408, code="media_fetch_timeout"
    )


def _redact(url: str) -> str:
    """The URL without its query and credentials, which may carry tokens."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def checked_address(url: str, policy: MediaPolicy, resolver: Resolver) -> tuple[str, str, int, str]:
    """(scheme, host, port, the address to connect to) for one hop, or a 403 before anything is sent."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _refused(url, f"the scheme {parts.scheme!r} is not http or https")
    try:
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refused(url, "the port is not a number") from None
    if not host:
        raise _refused(url, "no host")
    if parts.username or parts.password:
        raise _refused(url, "credentials in the URL")
    if not host_allowed(host, policy.allowed_hosts):
        raise _refused(url, f"{host!r} is not one of the allowed media hosts")
    try:
        addresses = [str(ipaddress.ip_address(host))]  # an address literal: no lookup
    except ValueError:
        addresses = resolver(host, port)
    if not addresses:
        raise RequestError(
            f"The media host {host!r} resolves to no address.", code="media_fetch_failed"
        )
    for address in addresses:
        reason = refusal_reason(ipaddress.ip_address(address.split("%", 1)[0]))
        if reason:
            raise _refused(url, f"{host!r} resolves to {address}, {reason}")
    return parts.scheme, host, port, addresses[0]


class _PinnedConnection(http.client.HTTPSConnection):
    """An HTTP(S) connection to a fixed, already checked address; Host, SNI and the certificate
    check use the URL's host name."""

    def __init__(
        self, scheme: str, host: str, port: int, address: str, timeout: float, connector: Connector
    ):
        context = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=context)
        self._scheme, self._address, self._connector = scheme, address, connector
        self._tls = context  # the one the base class keeps as its private `_context`

    def connect(self) -> None:
        assert self.timeout is not None  # always a number: __init__ takes a float
        sock = self._connector((self._address, self.port), self.timeout)
        self.sock = (
            self._tls.wrap_socket(sock, server_hostname=self.host)
            if self._scheme == "https"
            else sock
        )


def fetch(url: str, policy: MediaPolicy) -> bytes:
    """The body at `url`, fetched under `policy` (see the module docstring)."""
    resolver = policy.resolver or system_resolver
    connector = policy.connector or tcp_connector
    deadline = time.monotonic() + policy.remote_timeout
    for _ in range(policy.max_redirects + 1):
        scheme, host, port, address = checked_address(url, policy, resolver)
        left = deadline - time.monotonic()
        if left <= 0:
            raise _too_slow()
        connection = _PinnedConnection(scheme, host, port, address, left, connector)
        try:
            parts = urlsplit(url)
            default_port = 443 if scheme == "https" else 80
            connection.request(
                "GET",
                (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                headers={
                    "Host": host if port == default_port else f"{host}:{port}",
                    "User-Agent": "anycap-serve",
                    "Accept": "*/*",
                },
            )
            sock = (
                connection.sock
            )  # getresponse() drops it from the connection when the server will close
            reply = connection.getresponse()
            if reply.status in _REDIRECTS and reply.getheader("Location"):
                url = urljoin(url, reply.getheader("Location"))
                continue
            if reply.status != 200:
                raise RequestError(
                    f"The media URL answered HTTP {reply.status}.", code="media_fetch_failed"
                )
            return _read_limited(reply, sock, policy.max_media_bytes, deadline)
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, TimeoutError) or "timed out" in str(e):
                raise _too_slow() from None
            raise RequestError(
                f"Cannot fetch the media URL: {type(e).__name__}.", code="media_fetch_failed"
            ) from None
        finally:
            connection.close()
    raise _refused(url, f"more than {policy.max_redirects} redirects")


def _read_limited(
    reply: http.client.HTTPResponse, sock: socket.socket, limit: int, deadline: float
) -> bytes:
    declared = reply.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"Media larger than {limit} bytes.", status=413, code="media_too_large")
    body = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _too_slow()
        sock.settimeout(left)  # a trickling server cannot stretch the fetch past the deadline
        chunk = reply.read1(
            min(64 * 1024, limit + 1 - len(body))
        )  # what has arrived, not a full buffer
        if not chunk:
            break
        body += chunk
        if len(body) > limit:
            raise RequestError(
                f"Media larger than {limit} bytes.", status=413, code="media_too_large"
            )
    return bytes(body)
