"""The OpenAI-compatible HTTP server (Starlette on uvicorn): `/v1/chat/completions`, `/v1/models`, `/health`.

Safety: binds 127.0.0.1 unless told otherwise, and refuses to bind anything else without an API
key unless `--no-auth` says so; with an API key every request must carry it (compared in constant
time); bodies and media are size-limited; remote media URLs (public hosts only) and local paths
are refused unless allowed. Client mistakes get a 4xx with an OpenAI-style error body; anything
else a 500 whose body holds no trace and no secret (the trace goes to the server's log).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..access import HostGuard, auth_rule, bearer_matches
from ..errors import RequestError
from .batching import DynamicBatcher
from .protocol import CaptionRequest, MediaPolicy, parse_request
from .served import ServedModel, error_status, usage_of

log = logging.getLogger("anycap.serve")


@dataclass
class ServeConfig:
    spec: str
    options: dict[str, Any] = field(default_factory=dict)  # the base captioner's, per call
    post_options: dict[str, Any] = field(default_factory=dict)  # the post-processor's, per call
    model_name: str | None = None
    api_key: str | None = None
    max_batch: int = 8
    batch_window: float = 0.01
    max_body_bytes: int = 64 * 1024 * 1024
    max_media_bytes: int = 32 * 1024 * 1024
    allow_remote_media: bool = False
    allowed_media_hosts: list[str] = field(default_factory=list)
    media_roots: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"  # the bound address: a request's Host may name it
    allowed_hosts: list[str] = field(default_factory=list)  # other names (--allow-host)

    @property
    def media_policy(self) -> MediaPolicy:
        return MediaPolicy(
            allow_remote=self.allow_remote_media,
            local_roots=tuple(Path(r) for r in self.media_roots),
            max_media_bytes=self.max_media_bytes,
            allowed_hosts=tuple(self.allowed_media_hosts),
        )


def _error(status: int, message: str, code: str) -> Any:
    from starlette.responses import JSONResponse

    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": code}}, status_code=status
    )


def wrong_host(message: str) -> bytes:
    """The 421 body `access.HostGuard` sends, as an OpenAI-style error (both backends)."""
    return json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "code": "wrong_host"}}
    ).encode()


def create_app(config: ServeConfig, served: ServedModel | None = None) -> Any:
    """The ASGI app; `served` lets a caller reuse a model already loaded."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    model = served or ServedModel(
        config.spec, config.model_name, config.options, config.post_options
    )
    policy = config.media_policy
    batcher: DynamicBatcher[CaptionRequest, Any] = DynamicBatcher(
        model.run, config.max_batch, config.batch_window
    )
    key = config.api_key.encode() if config.api_key else None
    started = int(time.time())

    def authorized(request: Request) -> bool:
        return key is None or bearer_matches(request.headers.get("authorization", ""), key)

    async def read_json(request: Request) -> Any:
        # a browser sends text/plain, form and typeless bodies cross-site without asking first:
        # JSON only, so no page on another site can make this server run the model
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            raise RequestError(
                "Request bodies must be JSON sent as `Content-Type: application/json`.",
                415,
                "unsupported_media_type",
            )
        declared = request.headers.get("content-length")
        if declared is not None and (
            not declared.isdigit() or int(declared) > config.max_body_bytes
        ):
            raise RequestError(
                f"Request bodies are limited to {config.max_body_bytes} bytes.",
                413,
                "body_too_large",
            )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > config.max_body_bytes:
                raise RequestError(
                    f"Request bodies are limited to {config.max_body_bytes} bytes.",
                    413,
                    "body_too_large",
                )
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RequestError("The request body is not valid JSON.", code="invalid_json") from None

    async def chat_completions(request: Request) -> Any:
        try:
            body = await read_json(request)
            parsed = await asyncio.to_thread(
                parse_request, body, policy
            )  # decoding media is CPU work
            if parsed.model != model.name:
                raise RequestError(
                    f"Unknown model {parsed.model!r}; this server serves {model.name!r}.",
                    404,
                    "model_not_found",
                )
            caption = await batcher.submit(parsed)
        except Exception as e:
            status, code, message = error_status(e)
            if status >= 500:
                log.error("request failed", exc_info=e)
            return _error(status, message, code)
        reply_id = f"chatcmpl-{uuid.uuid4().hex}"
        extra = {
            "anycap": {
                "base_caption": caption.base_text
                if caption.base_text is not None
                else parsed.base_caption,
                "meta": caption.meta,
            }
        }
        if parsed.stream:
            return StreamingResponse(
                _stream(reply_id, model.name, caption.text, usage_of(caption)),
                media_type="text/event-stream",
            )
        return JSONResponse(
            {
                "id": reply_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model.name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": caption.text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage_of(caption),
                **extra,
            }
        )

    async def models(request: Request) -> Any:
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": model.name, "object": "model", "created": started, "owned_by": "anycap"}
                ],
            }
        )

    async def health(request: Request) -> Any:
        return JSONResponse(
            {
                "status": "ok",
                "model": model.name,
                "batches": batcher.batches,
                "items": batcher.items,
            }
        )

    async def guard(scope: Any, receive: Any, send: Any) -> None:
        """Every request: the API key first, then routing (lifespan events pass straight through)."""
        if scope["type"] == "http" and not authorized(Request(scope)):
            await _error(401, "Missing or wrong API key.", "invalid_api_key")(scope, receive, send)
            return
        await router(scope, receive, send)

    async def internal_error(request: Request, exc: Exception) -> Any:
        log.error("unhandled error", exc_info=exc)
        return _error(500, "Internal server error.", "server_error")

    async def not_found(request: Request, exc: Exception) -> Any:
        status = getattr(exc, "status_code", 404)
        return _error(status, "Not found." if status == 404 else "Method not allowed.", "not_found")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    router = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_found, Exception: internal_error},
        lifespan=lifespan,
    )

    return HostGuard(guard, config.host, config.allowed_hosts, key is not None, wrong_host)


async def _stream(reply_id: str, name: str, text: str, usage: dict[str, int]) -> AsyncIterator[str]:
    """Server-sent events in the chat-completions chunk format. The caption is complete when the
    batch finishes, so it arrives as one content chunk: clients that stream work unchanged."""

    def chunk(delta: dict[str, Any], finish: str | None, **more: Any) -> str:
        return (
            "data: "
            + json.dumps(
                {
                    "id": reply_id,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    **more,
                }
            )
            + "\n\n"
        )

    yield chunk({"role": "assistant", "content": text}, None)
    yield chunk({}, "stop", usage=usage)
    yield "data: [DONE]\n\n"


def serve(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    no_auth: bool = False,
) -> None:
    import uvicorn

    rule = auth_rule(
        host, config.api_key, no_auth
    )  # before the model loads: a refusal costs nothing
    logging.basicConfig(level=logging.INFO)
    (log.warning if "NONE" in rule else log.info)(rule)
    app = create_app(dataclasses.replace(config, host=host))
    uvicorn.run(app, host=host, port=port, log_level=log_level)


@contextlib.contextmanager
def running(config: ServeConfig, served: ServedModel | None = None) -> Iterator[str]:
    """Serve in a background thread on 127.0.0.1 and a free port; yields the `/v1` base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(config, served), log_level="warning", timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("The server did not start.")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
