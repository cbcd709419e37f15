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
SORTS = ("review", "edited")  # sorts by review state, beside the index's NUMERIC ones


class ReviewedRun:
    """One run and its reviews, as filters and sorts over the index's rows. A stale review (its
    record changed since: a resume re-captioned it) is not applied here either: its row counts as
    pending, unedited and untagged, as `anycap export` counts it."""

    def __init__(self, index: RunIndex, journal: ReviewJournal) -> None:
        self.index, self.journal = index, journal
        self._lock = threading.Lock()
        # per status, tag:T, edited: key hashes; "stale": row numbers; kept until a write or growth
        self._hashes: tuple[int, dict[str, np.ndarray]] | None = None
        self._applies: dict[int, tuple[str, bool]] = {}  # row -> (the review's `of`, applies)
        # key -> its stale rows (keys with none left out), for `count` rows; `_dirty`: keys written since
        self._stale: tuple[int, dict[str, list[int]]] | None = None
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()  # writes add to `_dirty` while a query may read it

    def key(self, n: int) -> tuple[str, dict[str, Any] | None]:
        record = self.index.record(n)
        return (key_of(record, n) if record is not None else f"line:{n}"), record

    def state(self, n: int) -> dict[str, Any]:
        key, record = self.key(n)
        review = self.journal.get(key) or Review(key=key)
        return review.shown(record)

    def reviewed(self) -> int:
        """Rows whose accepted or rejected review applies to their record, as the filters count
        them: a stale review, or one for a key the run does not hold, is not counted."""
        done = [r.key for r in self.journal.reviews.values() if r.status != "pending"]
        if not done:
            return 0
        self._sets()  # brings the stale rows up to date
        keys, _ = self.index.rows_by_key()
        hashes = np.array([key_hash(k) for k in done], np.int64)
        rows = np.searchsorted(keys, hashes, "right") - np.searchsorted(keys, hashes, "left")
        stale = self._stale[1] if self._stale is not None else {}
        return int(rows.sum()) - sum(len(stale.get(k, ())) for k in done)

    def tags(self) -> list[str]:
        return sorted({t for r in self.journal.reviews.values() for t in r.tags})

    def _sets(self) -> dict[str, np.ndarray]:
        with self._lock:
            count = self.index.count
            if self._hashes is None or self._hashes[0] != count:
                groups: dict[str, list[int]] = {}
                reviews = list(self.journal.reviews.values())
                for r in reviews:
                    h = key_hash(r.key)
                    groups.setdefault(r.status, []).append(h)
                    for t in r.tags:
                        groups.setdefault("tag:" + t, []).append(h)
                    if r.caption is not None:
                        groups.setdefault("edited", []).append(h)
                sets = {k: np.array(v, np.int64) for k, v in groups.items()}
                sets["stale"] = self._stale_rows(count, reviews)
                self._hashes = (count, sets)
            return self._hashes[1]

    def _stale_rows(self, count: int, reviews: list[Review]) -> np.ndarray:
        """Rows whose review does not apply to their record. Worked out for every review once (and
        again while the index grows), then only for the keys written since."""
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        if self._stale is None or self._stale[0] != count:
            self._stale, dirty = (count, {}), {r.key for r in reviews}
        by_key = self._stale[1]
        for key in dirty:
            by_key.pop(key, None)
            review = self.journal.get(key)
            rows = self._stale_of(review) if review is not None else []
            if rows:
                by_key[key] = rows
        return np.array([n for rows in by_key.values() for n in rows], np.int64)

    def _stale_of(self, review: Review) -> list[int]:
        """The rows of `review`'s key it does not apply to; each row's record read once per `of`."""
        if review.of is None:
            return []  # written by hand or another tool: applies to the record as it is
        keys, rows = self.index.rows_by_key()
        h = key_hash(review.key)
        stale = []
        for n in rows[np.searchsorted(keys, h, "left") : np.searchsorted(keys, h, "right")]:
            known = self._applies.get(int(n))
            if known is None or known[0] != review.of:
                known = self._applies[int(n)] = (
                    review.of,
                    review.applies_to(self.index.record(int(n))),
                )
            if not known[1]:
                stale.append(int(n))
        return stale

    def _review_columns(
        self, rows: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """(the sets, each row's key hash, whether each row's review (if any) applies)."""
        sets = self._sets()
        keys = self.index.columns("key")["key"][rows]
        return sets, keys, ~np.isin(rows, sets["stale"])

    def narrow(self, rows: np.ndarray, review: str, tag: str, edited: bool) -> np.ndarray:
        """`rows` (from the index's query) with a review status, a tag, an edited caption."""
        if not (review or tag or edited):
            return rows
        sets, keys, applies = self._review_columns(rows)
        empty = np.zeros(0, np.int64)
        mask = np.ones(len(rows), bool)
        if review == "pending":
            done = np.concatenate([sets.get("accepted", empty), sets.get("rejected", empty)])
            mask &= ~(np.isin(keys, done) & applies)
        elif review in STATUSES:
            mask &= np.isin(keys, sets.get(review, empty)) & applies
        if tag:
            mask &= np.isin(keys, sets.get("tag:" + tag, empty)) & applies
        if edited:
            mask &= np.isin(keys, sets.get("edited", empty)) & applies
        return rows[mask]

    def order(self, rows: np.ndarray, by: str | None, descending: bool) -> np.ndarray:
        """`rows` sorted by review state (`SORTS`): `review` puts accepted, then rejected, then
        pending first; `edited` puts edited captions first; ties keep their order."""
        if by not in SORTS:
            return rows
        sets, keys, applies = self._review_columns(rows)
        empty = np.zeros(0, np.int64)
        if by == "review":
            value = np.full(len(rows), 2, np.int8)
            value[np.isin(keys, sets.get("rejected", empty)) & applies] = 1
            value[np.isin(keys, sets.get("accepted", empty)) & applies] = 0
        else:
            value = (~(np.isin(keys, sets.get("edited", empty)) & applies)).astype(np.int8)
        return rows[np.argsort(-value if descending else value, kind="stable")]

    def write(self, n: int, change: dict[str, Any], version: int) -> dict[str, Any]:
        key, record = self.key(n)
        review = self.journal.write(key, record, change, version)
        with self._dirty_lock:
            self._hashes = None
            self._dirty.add(key)
        return review.shown(record)

    def write_rows(self, rows: np.ndarray, change: dict[str, Any]) -> int:
        """One change to every row (a bulk action over a filter), each on its current version."""
        items = [self.key(int(n)) for n in rows]
        written = self.journal.write_many(items, change)
        with self._dirty_lock:
            self._hashes = None
            self._dirty.update(key for key, _ in items)
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
