"""Reviewing a caption run in `anycap view`: the run's index joined to its review journal (filters
over review state, each row's review), and the write endpoints.

Writes change what a person decided, so they need more than reads: the viewer's token where it has
one, and a same-origin request: an `Origin` header naming this server and the per-session write
token the page holds (put in the page it is served, never in a URL). A page on another site can
send neither (the header forces a preflight this server does not answer).
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ReviewError, StaleReviewError
from .display import key_of
from .index import Query, RunIndex, key_hash
from .reviews import STATUSES, Review, ReviewJournal

WRITE_HEADER = "x-anycap-write"
BULK_LIMIT = 200_000


class ReviewedRun:
    """One run and its reviews. Filters use each review's latest status (a stale review is found
    by its old status until the item is opened or written)."""

    def __init__(self, index: RunIndex, journal: ReviewJournal) -> None:
        self.index, self.journal = index, journal
        self._lock = threading.Lock()
        self._hashes: dict[str, np.ndarray] | None = None  # per status, tag:T, edited

    def key(self, n: int) -> tuple[str, dict[str, Any] | None]:
        record = self.index.record(n)
        return (key_of(record, n) if record is not None else f"line:{n}"), record

    def state(self, n: int) -> dict[str, Any]:
        key, record = self.key(n)
        review = self.journal.get(key) or Review(key=key)
        return review.shown(record)

    def reviewed(self) -> int:
        return sum(r.status != "pending" for r in self.journal.reviews.values())

    def tags(self) -> list[str]:
        return sorted({t for r in self.journal.reviews.values() for t in r.tags})

    def _sets(self) -> dict[str, np.ndarray]:
        with self._lock:
            if self._hashes is None:
                groups: dict[str, list[int]] = {}
                for r in self.journal.reviews.values():
                    h = key_hash(r.key)
                    groups.setdefault(r.status, []).append(h)
                    for t in r.tags:
                        groups.setdefault("tag:" + t, []).append(h)
                    if r.caption is not None:
                        groups.setdefault("edited", []).append(h)
                self._hashes = {k: np.array(v, np.int64) for k, v in groups.items()}
            return self._hashes

    def narrow(self, rows: np.ndarray, review: str, tag: str, edited: bool) -> np.ndarray:
        """`rows` (from the index's query) with a review status, a tag, an edited caption."""
        if not (review or tag or edited):
            return rows
        sets, keys = self._sets(), self.index.columns("key")["key"][rows]
        empty = np.zeros(0, np.int64)
        mask = np.ones(len(rows), bool)
        if review == "pending":
            done = np.concatenate([sets.get("accepted", empty), sets.get("rejected", empty)])
            mask &= ~np.isin(keys, done)
        elif review in STATUSES:
            mask &= np.isin(keys, sets.get(review, empty))
        if tag:
            mask &= np.isin(keys, sets.get("tag:" + tag, empty))
        if edited:
            mask &= np.isin(keys, sets.get("edited", empty))
        return rows[mask]

    def write(self, n: int, change: dict[str, Any], version: int) -> dict[str, Any]:
        key, record = self.key(n)
        review = self.journal.write(key, record, change, version)
        self._hashes = None
        return review.shown(record)

    def write_rows(self, rows: np.ndarray, change: dict[str, Any]) -> int:
        """One change to every row (a bulk action over a filter), each on its current version."""
        items = [self.key(int(n)) for n in rows]
        written = self.journal.write_many(items, change)
        self._hashes = None
        return written


def review_routes(
    reviewed: dict[str, ReviewedRun],
    authorized: Callable[[Any], bool],
    refuse: Callable[[], Any],
    write_token: str,
    query_of: Callable[[Any], Query],
) -> list[Any]:
    """POST /api/review (one item) and /api/review/bulk (every item of a filter)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def same_origin(request: Request) -> str | None:
        """Why a write is refused, or None: the page's own origin and its write token."""
        origin = request.headers.get("origin", "")
        host = request.headers.get("host", "")
        if not host or origin not in (f"http://{host}", f"https://{host}"):
            return "Writes come from the viewer's own page (this request's Origin is not it)."
        offered = request.headers.get(WRITE_HEADER, "")
        if not hmac.compare_digest(offered.encode(), write_token.encode()):
            return "Writes need the page's session token: reload the viewer's page."
        media_type = request.headers.get("content-type", "").partition(";")[0].strip()
        if media_type != "application/json":
            return "Writes are JSON (Content-Type: application/json)."
        return None

    async def body_of(request: Request) -> tuple[ReviewedRun, dict[str, Any]]:
        body = json.loads(await request.body())
        if not isinstance(body, dict):
            raise ReviewError("A review is a JSON object.", hint="Send {n, version, status, ...}.")
        run = reviewed.get(str(body.pop("run", "a")))
        if run is None:
            raise ReviewError("Only a caption run viewed alone can be reviewed.")
        return run, body

    async def guarded(request: Request, act: Callable[..., Any]) -> Response:
        if not authorized(request):
            return refuse()
        why = same_origin(request)
        if why is not None:
            return JSONResponse({"error": why}, 403)
        try:
            run, body = await body_of(request)
            import asyncio

            return JSONResponse(await asyncio.to_thread(act, run, body))
        except StaleReviewError as e:
            return JSONResponse({"error": str(e), "stale": True}, 409)
        except (ReviewError, ValueError, KeyError, IndexError) as e:
            return JSONResponse({"error": str(e) or "No such item."}, 400)

    def one(run: ReviewedRun, body: dict[str, Any]) -> dict[str, Any]:
        n, version = int(body.pop("n")), int(body.pop("version", -1))
        review = run.write(n, body, version)
        return {"n": n, "review": review, "reviewed": run.reviewed()}

    def bulk(run: ReviewedRun, body: dict[str, Any]) -> dict[str, Any]:
        change = body.pop("change", None)
        if not isinstance(change, dict) or set(change) - {"status", "tags"}:
            raise ReviewError("A bulk change sets status and tags.", hint='{"status": "rejected"}')
        rows = run.index.select(query_of(body))
        rows = run.narrow(
            rows, body.get("review", ""), body.get("tag", ""), bool(body.get("edited"))
        )
        if len(rows) > BULK_LIMIT:
            raise ReviewError(
                f"{len(rows)} items: a bulk change takes at most {BULK_LIMIT}.",
                hint="Narrow the filter.",
            )
        return {"written": run.write_rows(rows, change), "reviewed": run.reviewed()}

    async def write_one(request: Request) -> Response:
        return await guarded(request, one)

    async def write_bulk(request: Request) -> Response:
        return await guarded(request, bulk)

    return [
        Route("/api/review", write_one, methods=["POST"]),
        Route("/api/review/bulk", write_bulk, methods=["POST"]),
    ]
