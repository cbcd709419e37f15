"""`anycap serve`'s safety defaults on LMDeploy's api_server, which has other ones.

- Media: LMDeploy fetches any http(s) URL a request names (following redirects, to any address)
  and reads any local path that exists. `enforce_media_policy` replaces its loader's checks with
  ours: data URLs always, remote URLs only with --allow-remote-media and then fetched by
  `remote_media.fetch` (public addresses only, every redirect hop checked, --allowed-media-hosts),
  local paths only under --media-root, each under --max-media-mb. LMDeploy never opens a
  connection itself. A refusal is a ValueError, which LMDeploy answers with a 400 and its message.
- Body size: LMDeploy's app reads bodies of any size; `BodyLimit` answers 413 over --max-body-mb.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from ...errors import RequestError
from ..protocol import MediaPolicy, check_source
from ..remote_media import fetch


def enforce_media_policy(policy: MediaPolicy) -> None:
    """Check every media URL of every request against `policy` before LMDeploy loads it (this process)."""
    from lmdeploy.serve.processors import multimodal

    load = getattr(multimodal.load_from_url, "__wrapped__", multimodal.load_from_url)

    @functools.wraps(load)
    def load_from_url(
        url: str, media_io: Any, allowed_media_domains: list[str] | None = None
    ) -> Any:
        try:
            local = check_source(url, policy)
            if url.startswith(("http://", "https://")):
                return media_io.load_bytes(
                    fetch(url, policy)
                )  # our fetch: LMDeploy's would go anywhere
        except RequestError as e:
            raise ValueError(str(e)) from None
        if (
            local is not None
        ):  # exactly the file checked: LMDeploy would unquote the URL's path again
            return media_io.load_file(local)
        return load(url, media_io, allowed_media_domains)

    multimodal.load_from_url = load_from_url


class BodyLimit:
    """ASGI middleware: a 413 for HTTP bodies over `limit` bytes, declared or streamed; the rest pass on."""

    def __init__(self, app: Callable, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await self._refuse(send)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await self._refuse(send)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return (
                await receive()
            )  # after the body: wait for the disconnect, as the server would say it

        await self.app(scope, replay, send)

    async def _refuse(self, send: Callable) -> None:
        payload = json.dumps(
            {
                "error": {
                    "message": f"Request bodies are limited to {self.limit} bytes.",
                    "type": "invalid_request_error",
                    "code": "body_too_large",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
