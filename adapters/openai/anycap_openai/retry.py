"""When to retry an API call and how long to wait: 429, 5xx, timeouts and dropped
connections are retried with exponential backoff and full jitter, honouring Retry-After;
other 4xx errors are the caller's to fix and are not retried."""

from __future__ import annotations

import random
from dataclasses import dataclass

import openai


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        backoff = min(self.max_delay, self.base_delay * (2 ** attempt)) * rng.uniform(0.5, 1.0)
        if retry_after is not None:
            return min(self.max_delay, max(retry_after, 0.0)) + rng.uniform(0, self.base_delay * 0.1)
        return backoff


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code == 429 or error.status_code >= 500
    return False


def retry_after(error: BaseException) -> float | None:
    """The server's Retry-After (seconds, or the OpenAI `retry-after-ms` header)."""
    response = getattr(error, "response", None)
    if response is None:
        return None
    headers = response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                return None  # an HTTP date: fall back to our own backoff
    return None
