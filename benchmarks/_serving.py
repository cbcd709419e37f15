"""Client side shared by the serving benchmarks: real photos as data URLs, the openai SDK as the client."""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import openai

from anycap_plugin import testing
from anycap_plugin.acm_runtime.remote import remote_prompt

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "horse", "motorcycle_left"]


def image_requests(n: int) -> list[list[dict]]:
    """`n` ACM requests (the remote-ACM protocol): a photo, an instruction, a base caption."""
    out = []
    for i in range(n):
        data = base64.b64encode(testing.sample_image(PHOTOS[i % len(PHOTOS)]).read_bytes()).decode()
        out.append([{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
                    {"type": "text", "text": remote_prompt(f"Describe image {i}, its objects and colours.",
                                                           "A photo.")}])
    return out


@dataclass
class Run:
    seconds: float
    texts: list[str]
    completion_tokens: int


def measure(url: str, contents: list[list[dict]], max_tokens: int, model: str = "acm", warm_up: bool = True) -> Run:
    """All `contents` sent at once (greedy), timed from the first send to the last reply."""

    async def go() -> Run:
        client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0, timeout=1800)

        async def one(content: list[dict]) -> tuple[str, int]:
            reply = await client.chat.completions.create(model=model, max_tokens=max_tokens, temperature=0,
                                                         messages=[{"role": "user", "content": content}])
            return reply.choices[0].message.content or "", reply.usage.completion_tokens if reply.usage else 0

        if warm_up:
            await one(contents[0])  # first connection, first forward pass
        t0 = time.perf_counter()
        replies = await asyncio.gather(*(one(c) for c in contents))
        seconds = time.perf_counter() - t0
        await client.close()
        return Run(seconds, [t for t, _ in replies], sum(n for _, n in replies))

    return asyncio.run(go())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`anycap serve ...` in a child process on 127.0.0.1, ready once it lists its model; stopped on exit."""

    def __init__(self, *args: str, startup_s: float = 900) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.args, self.startup_s = args, startup_s

    def __enter__(self) -> "ServerProcess":
        self.output = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server never blocks on it
        self.proc = subprocess.Popen([sys.executable, "-m", "anycap_plugin", "serve", *self.args,
                                      "--port", str(self.port)], stdout=self.output, stderr=subprocess.STDOUT)
        client = openai.OpenAI(base_url=self.url, api_key="bench", max_retries=0, timeout=5)
        deadline = time.monotonic() + self.startup_s
        while True:
            try:
                client.models.list()
                return self
            except (openai.APIConnectionError, openai.APITimeoutError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"server {self.args} did not start:\n{self.log[-4000:]}") from None
                time.sleep(1)

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.output.seek(0)
        self.log = self.output.read().decode(errors="replace")
        self.output.close()
