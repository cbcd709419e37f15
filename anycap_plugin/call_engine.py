"""Many model calls per item against OpenAI-compatible endpoints: the engine CapFlow and
`anycap synth` share.

- Endpoints (vLLM, LMDeploy, `anycap serve`, hosted APIs) are one `openai_compat.ChatTransport`
  each, bounding how many calls are in flight; roles (router, agent, judge, ...) name an
  endpoint, a model and sampling settings.
- Retries are the OpenAI SDK's own (429/5xx/timeouts, Retry-After honoured); a reply that is
  not the JSON asked for is asked again a bounded number of times (`openai_compat.ask_parsed`).
- A call cache (SQLite) keyed by everything a call sends: a re-run pays only for what failed.
- Tokens, calls, cache hits and cost are counted per role.

Calls run on one event loop in a background thread, so captioners called from the batch
runner's threads share the endpoint limits; `run(coro)` waits for one coroutine from any thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .errors import CallError, OptionsError, ReplyFormatError
from .openai_compat import ChatTransport, api_key, ask_parsed, reply_text
from .sqlite_cache import JsonCache

T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server. The key is read from the environment variable `api_key_env`."""

    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 16
    timeout: float = 120.0
    max_retries: int = 5


@dataclass(frozen=True)
class Role:
    """Who makes a call: the endpoint and model, sampling, and prices (USD per million tokens)."""

    model: str
    endpoint: str = "default"
    temperature: float = 0.0
    max_tokens: int | None = 1024
    price_in: float = 0.0
    price_out: float = 0.0


@dataclass
class RoleUsage:
    calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: RoleUsage) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)


@dataclass(frozen=True)
class Reply:
    text: str
    data: Any = None  # the parsed JSON, when asked for
    usage: RoleUsage = field(default_factory=RoleUsage)
    cached: bool = False


class CallEngine:
    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        roles: dict[str, Role],
        *,
        cache: str | Path | None = None,
        api_keys: dict[str, str] | None = None,
        json_attempts: int = 3,
    ) -> None:
        for name, role in roles.items():
            if role.endpoint not in endpoints:
                raise OptionsError(
                    f"Role {name!r} names endpoint {role.endpoint!r}, which is not defined.",
                    hint="Defined endpoints: " + ", ".join(sorted(endpoints)) + ".",
                )
        self.endpoints, self.roles, self.json_attempts = endpoints, roles, json_attempts
        self._transports = {
            name: ChatTransport(
                ep.base_url,
                api_key(
                    (api_keys or {}).get(name),
                    (ep.api_key_env,),
                    ep.base_url,
                    who=f"endpoint {name!r}",
                    hint=f"Set {ep.api_key_env}, or give the endpoint a base_url of a server "
                    "that needs none.",
                ),
                timeout=ep.timeout,
                max_retries=ep.max_retries,
                concurrency=ep.concurrency,
            )
            for name, ep in endpoints.items()
        }  # a missing key is refused here, before any call
        self.cache = JsonCache(cache) if cache is not None else None
        self.usage: dict[str, RoleUsage] = {name: RoleUsage() for name in roles}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- the loop --------------------------------------------------------------------
    def run(self, coro: Awaitable[T]) -> T:
        """Run `coro` on the engine's loop and wait for it (from any thread but the loop's own)."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(
                    target=self._loop.run_forever, name="anycap-calls", daemon=True
                ).start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]

    def close(self) -> None:
        if self._loop is not None:
            for transport in self._transports.values():
                asyncio.run_coroutine_threadsafe(transport.aclose(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None
        if self.cache is not None:
            self.cache.close()

    # ---- calls -----------------------------------------------------------------------
    async def chat(
        self,
        role: str,
        messages: list[dict[str, Any]],
        *,
        parse: Callable[[str], Any] | None = None,
    ) -> Reply:
        """One chat completion as `role`. With `parse` (e.g. `json_object`), the reply is parsed
        and re-asked up to `json_attempts` times while parsing fails; only good replies are cached."""
        spec = self.roles.get(role)
        if spec is None:
            raise OptionsError(
                f"Unknown role {role!r}.", hint="Roles: " + ", ".join(sorted(self.roles)) + "."
            )
        body = {
            "model": spec.model,
            "messages": messages,
            "temperature": spec.temperature,
            **({"max_tokens": spec.max_tokens} if spec.max_tokens else {}),
        }
        key = self._key(spec, body)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            usage = RoleUsage(cache_hits=1)
            self._account(role, usage)
            return Reply(
                cached["text"], parse(cached["text"]) if parse else None, usage, cached=True
            )
        last = RoleUsage()

        async def ask(asked: list[dict[str, Any]]) -> str:
            nonlocal last
            text, last = await self._post(role, spec, {**body, "messages": asked})
            return text

        def unusable(problems: list[str]) -> ReplyFormatError:
            self._account(role, RoleUsage(failures=1))
            return ReplyFormatError(
                f"The {role} reply is not what its prompt asks for, {self.json_attempts} times: "
                f"{problems[-1]}",
                hint="Check that the role's model follows JSON instructions.",
            )

        text, data = await ask_parsed(
            ask, messages, parse or _unparsed, self.json_attempts if parse else 1, unusable
        )
        if self.cache is not None:
            self.cache.put(key, {"text": text})
        return Reply(text, data, last)

    async def _post(self, role: str, spec: Role, body: dict[str, Any]) -> tuple[str, RoleUsage]:
        import openai

        try:
            response = await self._transports[spec.endpoint].post(body)
        except openai.OpenAIError as e:
            self._account(role, RoleUsage(failures=1))
            raise self._failure(role, spec, e) from None
        if not (isinstance(response, dict) and response.get("choices")):
            self._account(role, RoleUsage(failures=1))
            raise CallError(
                f"The {role} endpoint sent no choices.", hint="Check the server's logs."
            )
        text = reply_text(response)
        reported = response.get("usage") or {}
        prompt, completion = (
            int(reported.get("prompt_tokens") or 0),
            int(reported.get("completion_tokens") or 0),
        )
        usage = RoleUsage(
            calls=1,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=(prompt * spec.price_in + completion * spec.price_out) / 1e6,
        )
        self._account(role, usage)
        return text, usage

    def _account(self, role: str, usage: RoleUsage) -> None:
        with self._lock:
            self.usage.setdefault(role, RoleUsage()).add(usage)

    def _key(self, spec: Role, body: dict[str, Any]) -> str:
        where = self.endpoints[spec.endpoint].base_url or ""
        return hashlib.sha256(
            json.dumps([where, body], sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()

    def _failure(self, role: str, spec: Role, error: Exception) -> CallError:
        status, what = self._transports[spec.endpoint].failure(error)
        return CallError(
            f"The {role} call ({spec.model} at endpoint {spec.endpoint!r}) failed {what}",
            hint={
                401: f"Check {self.endpoints[spec.endpoint].api_key_env}.",
                404: "Check the model name and base_url.",
            }.get(status or 0),
        )

    def reset_usage(self) -> None:
        with self._lock:
            self.usage = {name: RoleUsage() for name in self.roles}

    def usage_report(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                role: {**asdict(u), "cost_usd": round(u.cost_usd, 6)}
                for role, u in self.usage.items()
            }


def _unparsed(text: str) -> None:
    """The `parse` of a call that asks for no JSON: every reply is usable, nothing is parsed."""


def fill(template: str, **values: str) -> str:
    """Replace `{name}` for the given names only, so other braces in a prompt (JSON examples) stay as written."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


async def bounded(
    items: Iterable[T], work: Callable[[T], Awaitable[Any]], limit: int
) -> AsyncIterator[tuple[T, Any]]:
    """`(item, result or exception)` as each finishes, with at most `limit` items in flight, reading
    `items` lazily (a stream of millions never sits in memory)."""
    pending: dict[asyncio.Task[Any], T] = {}
    source = iter(items)
    exhausted = False
    while pending or not exhausted:
        while not exhausted and len(pending) < limit:
            try:
                item = next(source)
            except StopIteration:
                exhausted = True
                break
            pending[asyncio.ensure_future(work(item))] = item
        if not pending:
            break
        done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            item = pending.pop(task)
            yield item, task.exception() if task.exception() is not None else task.result()
