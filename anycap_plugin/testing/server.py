"""A real OpenAI chat-completions server on 127.0.0.1 for tests and benchmarks.

It speaks the protocol over real HTTP (the official SDK talks to it unchanged), answers with
a function of the request, and can be told to misbehave: 429 with Retry-After, 500, slow
replies, dropped connections, either scheduled one by one or at a random rate.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self

from .responders import RESPONDERS, Responder, echo_responder, responder_named

FaultKind = Literal["429", "500", "slow", "drop"]


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    retry_after: float | None = None  # a Retry-After header on a 429 or 500
    seconds: float = 5.0  # for slow


class _LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # read at bind time: many clients connect at once in benchmarks


class ChatCompletionsServer:
    """`with ChatCompletionsServer() as s: OpenAI(base_url=s.base_url, api_key="k")`."""

    def __init__(
        self,
        responder: Responder = echo_responder,
        delay: float = 0.0,
        fault_rate: float = 0.0,
        seed: int = 0,
        model: str = "loopback-model",
        port: int = 0,
        fault_retry_after: float | None = 0.05,
        max_concurrency: int | None = None,
    ) -> None:
        self.port = port
        self.responder, self.delay, self.fault_rate, self.model = (
            responder,
            delay,
            fault_rate,
            model,
        )
        self.fault_retry_after = (
            fault_retry_after  # on the random faults; None: the client's own backoff
        )
        # at most this many replies are being computed at once, as a real model server's batch limit
        self._busy = threading.BoundedSemaphore(max_concurrency) if max_concurrency else None
        self.faults: deque[Fault] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.injected: dict[str, int] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # ---- lifecycle -----------------------------------------------------------------
    def start(self) -> Self:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one segment (no Nagle/delayed-ACK stall)
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/_stats"):
                    self._send(200, {"requests": len(server.requests), "injected": server.injected})
                elif self.path.rstrip("/").endswith("/models"):
                    self._send(
                        200, {"object": "list", "data": [{"id": server.model, "object": "model"}]}
                    )
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send(
                        400,
                        {"error": {"message": "malformed JSON", "type": "invalid_request_error"}},
                    )
                    return
                fault = server._next_fault()
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                if fault is not None and fault.kind == "drop":
                    self.connection.shutdown(2)  # close without a reply
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "slow":
                    time.sleep(fault.seconds)
                if fault is not None and fault.kind in ("429", "500"):
                    extra = (
                        {"Retry-After": f"{fault.retry_after:g}"}
                        if fault.retry_after is not None
                        else {}
                    )
                    error = (
                        {"message": "rate limited", "type": "rate_limit_error"}
                        if fault.kind == "429"
                        else {"message": "internal error", "type": "server_error"}
                    )
                    self._send(int(fault.kind), {"error": error}, extra)
                    return
                if server._busy is not None:
                    server._busy.acquire()
                try:
                    if server.delay:
                        time.sleep(server.delay)
                finally:
                    if server._busy is not None:
                        server._busy.release()
                try:
                    text = server.responder(body)
                except Exception as e:
                    self._send(400, {"error": {"message": str(e), "type": "invalid_request_error"}})
                    return
                prompt = len(json.dumps(body.get("messages", []))) // 4
                completion = max(1, len(text.split()))
                self._send(
                    200,
                    {
                        "id": "chatcmpl-" + uuid.uuid4().hex[:12],
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", server.model),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt,
                            "completion_tokens": completion,
                            "total_tokens": prompt + completion,
                        },
                    },
                )

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = _LoopbackHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, name="chat-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # ---- faults --------------------------------------------------------------------
    def inject(self, *faults: Fault) -> None:
        """Schedule faults for the next requests, in order."""
        with self._lock:
            self.faults.extend(faults)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            fault = self.faults.popleft() if self.faults else None
            if fault is None and self.fault_rate and self._rng.random() < self.fault_rate:
                fault = Fault(self._rng.choice(["429", "500"]), retry_after=self.fault_retry_after)
            if fault is not None:
                self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
            return fault


@contextmanager
def server_process(*options: str) -> Iterator[str]:
    """The server in a process of its own (`main`'s options, e.g. "--delay", "0.1"), stopped on exit;
    yields its base URL. Benchmarks use it so the server does not share the client's GIL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "anycap_plugin.testing.server", *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc.stdout.readline().strip()  # type: ignore[union-attr]
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    """Run the server in its own process: `python -m anycap_plugin.testing.server --delay 0.2`.

    Benchmarks use this so the server does not share the client's interpreter (and GIL).
    """
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=None,
        help="replies computed at once (default: no limit)",
    )
    p.add_argument(
        "--fault-retry-after",
        default="0.05",
        help="Retry-After seconds on the random faults, or 'none' to send no header",
    )
    p.add_argument(
        "--responder",
        default="echo",
        help=f"one of {', '.join(sorted(RESPONDERS))}, or module:function (a plugin's own responder)",
    )
    args = p.parse_args()
    retry_after = None if args.fault_retry_after == "none" else float(args.fault_retry_after)
    server = ChatCompletionsServer(
        responder=responder_named(args.responder),
        delay=args.delay,
        fault_rate=args.fault_rate,
        seed=args.seed,
        port=args.port,
        fault_retry_after=retry_after,
        max_concurrency=args.max_concurrency,
    ).start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
