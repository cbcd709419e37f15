"""`anycap view`'s web app: one page (static/index.html, no build step, nothing from a CDN) and
a JSON API over indexed runs. Filters, search and sorting run here; the page asks for one page of
rows at a time.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

from ..access import HostGuard, bearer_matches
from ..errors import EvalDataError, MediaRefused, OptionsError
from .display import summary
from .index import Query, RunIndex
from .media import picture, resolve
from .review_api import ReviewedRun, review_routes
from .reviews import ReviewJournal

STATIC = Path(__file__).parent / "static"
PAGE_LIMIT = 500
TOKEN_COOKIE = "anycap_view_token"


@dataclass
class Runs:
    """What one `anycap view` shows: a caption run, two of them side by side, or an evaluation."""

    runs: dict[str, RunIndex] = field(default_factory=dict)  # "a", "b"
    media_roots: list[Path] = field(default_factory=list)
    report: dict[str, Any] | None = None
    report_dir: Path | None = None
    reviewed: dict[str, ReviewedRun] = field(default_factory=dict)  # a caption run viewed alone

    @property
    def mode(self) -> str:
        return "eval" if self.report is not None else "compare" if len(self.runs) == 2 else "run"

    def roots(self, run: str) -> list[Path]:
        return [self.runs[run].path.parent, *self.media_roots]


def open_runs(paths: list[Path], media_roots: list[Path] | None = None, start: bool = True) -> Runs:
    """Caption runs (JSONL / Parquet) start indexing (or wait for `start()`); an evaluation folder
    (report.json) is read."""
    roots = [Path(r) for r in media_roots or []]
    first = Path(paths[0])
    report_file = (
        first / "report.json" if first.is_dir() else first if first.suffix == ".json" else None
    )
    if report_file is not None:
        if len(paths) > 1:
            raise OptionsError(
                "An evaluation run is viewed alone.",
                hint="Give its folder (or report.json) alone; two caption runs can be compared.",
            )
        try:
            report = json.loads(report_file.read_text())
        except (OSError, ValueError) as e:
            raise EvalDataError(
                f"Cannot read the evaluation report {report_file}: {e}",
                hint="Give the folder `anycap eval` wrote, or a caption run (JSONL or Parquet).",
            ) from None
        return Runs(media_roots=roots, report=report, report_dir=report_file.parent)
    pair = len(paths) == 2
    runs = {name: RunIndex(Path(p).resolve(), keys=True) for name, p in zip("ab", paths)}
    for index in runs.values():
        if start:
            index.start()
    reviewed = {} if pair else {"a": ReviewedRun(runs["a"], ReviewJournal(runs["a"].path))}
    return Runs(runs=runs, media_roots=roots, reviewed=reviewed)


def _query(params: Any) -> Query:
    return Query(
        status=params.get("status") or None,
        error=params.get("error") or None,
        complies=params.get("complies") or None,
        modality=params.get("modality") or None,
        text=(params.get("q") or "").strip() or None,
        sort=params.get("sort") or None,
        descending=params.get("desc") in ("1", "true"),
    )


def _int(value: Any, default: int, low: int = 0, high: int | None = None) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return default
    n = max(low, n)
    return min(n, high) if high is not None else n


def create_app(
    runs: Runs,
    token: str | None = None,
    host: str = "127.0.0.1",
    allowed_hosts: list[str] | tuple[str, ...] = (),
) -> Any:
    """The page and its API behind a `Host` check (`access.HostGuard`); `host` is the bound address."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import (
        FileResponse,
        HTMLResponse,
        JSONResponse,
        RedirectResponse,
        Response,
    )
    from starlette.routing import Route

    write_token = secrets.token_urlsafe(24)  # the page holds it; a page on another site cannot
    page = (
        (STATIC / "index.html")
        .read_text()
        .replace(
            '<meta name="anycap-write" content="">',
            f'<meta name="anycap-write" content="{write_token}">',
            1,
        )
    )

    def authorized(request: Request) -> bool:
        if token is None:
            return True
        if bearer_matches(request.headers.get("authorization", ""), token.encode()):
            return True
        offered = request.cookies.get(TOKEN_COOKIE, "") or request.query_params.get("token", "")
        return hmac.compare_digest(offered.encode(), token.encode())

    def refuse() -> Response:
        return JSONResponse(
            {"error": "This viewer needs its token: open the URL `anycap view` printed."}, 401
        )

    async def index(request: Request) -> Response:
        if not authorized(request):
            return HTMLResponse(
                "<p>This viewer needs its token: open the URL <code>anycap view</code> printed.</p>",
                401,
            )
        if (
            "token" in request.query_params
        ):  # once: the token goes into a cookie and out of the address bar
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = "/" + ("?" + urlencode(rest) if rest else "")
            response = RedirectResponse(target, 303)
            response.set_cookie(TOKEN_COOKIE, token or "", httponly=True, samesite="strict")
            return response
        return HTMLResponse(
            page, headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
        )

    def run_of(request: Request) -> RunIndex:
        name = request.path_params.get("run") or request.query_params.get("run", "a")
        if name not in runs.runs:
            raise KeyError(name)
        return runs.runs[name]

    async def info(request: Request) -> Response:
        if not authorized(request):
            return refuse()
        return JSONResponse(
            {
                "mode": runs.mode,
                "runs": {
                    name: {
                        "path": str(r.path),
                        "name": r.path.name,
                        "count": r.count,
                        "done": r.done,
                        "failure": r.failure,
                        "error_types": list(r.error_types),
                        "review": review_info(name),
                    }
                    for name, r in runs.runs.items()
                },
            }
        )

    def review_info(name: str) -> dict[str, Any] | None:
        reviewed = runs.reviewed.get(name)
        if reviewed is None:
            return None
        return {
            "path": str(reviewed.journal.path),
            "read_only": reviewed.journal.read_only,
            "moved_aside": reviewed.journal.moved_aside,
            "reviewed": reviewed.reviewed(),
            "tags": reviewed.tags(),
        }

    def pair_of(n: int) -> dict[str, Any] | None:
        """Run B's row with run A's row `n`'s key, summarised."""
        a, b = runs.runs["a"], runs.runs["b"]
        m = b.find_hash(a.key_at(n)) if n < a.count else None
        return None if m is None else summary(b.display(m))

    async def items(request: Request) -> Response:
        if not authorized(request):
            return refuse()
        try:
            run = run_of(request)
        except KeyError:
            return JSONResponse({"error": "No such run."}, 404)
        params = request.query_params
        offset, limit = _int(params.get("offset"), 0), _int(params.get("limit"), 50, 1, PAGE_LIMIT)
        query = _query(params)
        started = asyncio.get_running_loop().time()
        while (
            not run.done and run.count < offset + limit
        ):  # a file being indexed: its first page, not an empty one
            await asyncio.sleep(
                0.005
            )  # (the first rows come within milliseconds; a far page waits for the index)
            if run.count and asyncio.get_running_loop().time() - started > 2.0:
                break
        # column filters take milliseconds; a text search reads lines, so it runs off the event loop
        rows = await asyncio.to_thread(run.select, query) if query.text else run.select(query)
        reviewed = next((r for r in runs.reviewed.values() if r.index is run), None)
        if reviewed is not None:
            review, tag = params.get("review") or "", params.get("tag") or ""
            rows = reviewed.narrow(rows, review, tag, params.get("edited") in ("1", "true"))
            rows = reviewed.order(rows, query.sort, query.descending)
        out = []
        for n in rows[offset : offset + limit]:
            row = summary(run.display(int(n)))
            if runs.mode == "compare" and run is runs.runs["a"]:
                row["pair"] = pair_of(int(n))
            if reviewed is not None:
                row["review"] = reviewed.state(int(n))
            out.append(row)
        return JSONResponse(
            {
                "total": len(rows),
                "indexed": run.count,
                "done": run.done,
                "failure": run.failure,
                "offset": offset,
                "items": out,
                "reviewed": None if reviewed is None else reviewed.reviewed(),
            }
        )

    def item(request: Request) -> Response:  # sync: Starlette runs it in its thread pool
        if not authorized(request):
            return refuse()
        try:
            run = run_of(request)
            n = int(request.query_params.get("n", "-1"))
            d = run.display(n)
        except (KeyError, ValueError, IndexError):
            return JSONResponse({"error": "No such item."}, 404)
        if runs.mode == "compare":
            other = runs.runs["b" if run is runs.runs["a"] else "a"]
            m = other.find_hash(run.key_at(n))
            d["pair"] = None if m is None else other.display(m)
        if request.query_params.get("run", "a") in runs.reviewed:
            d["review"] = runs.reviewed[request.query_params.get("run", "a")].state(n)
        return JSONResponse(d)

    def only(request: Request) -> Response:  # sync: Starlette runs it in its thread pool
        """Keys present in one run of the two only."""
        if not authorized(request) or runs.mode != "compare":
            return (
                refuse()
                if not authorized(request)
                else JSONResponse({"error": "Not comparing two runs."}, 404)
            )
        side = request.query_params.get("side", "a")
        this, other = (
            (runs.runs["a"], runs.runs["b"]) if side == "a" else (runs.runs["b"], runs.runs["a"])
        )
        alone = np.flatnonzero(~np.isin(this.columns("key")["key"], other.columns("key")["key"]))
        limit = _int(request.query_params.get("limit"), 100, 1, PAGE_LIMIT)
        return JSONResponse(
            {
                "total": len(alone),
                "items": [summary(this.display(int(n))) for n in alone[:limit]],
            }
        )

    @lru_cache(maxsize=256)
    def cached_picture(run: str, n: int, mtime: float) -> bytes:
        d = runs.runs[run].display(n)
        return picture(resolve(d["media"], runs.roots(run)), d["modality"])

    def media_path(request: Request) -> tuple[Path | None, Response | None]:
        """The file item `n` of a run names, if this request may have it; else the answer saying why not."""
        if not authorized(request):
            return None, refuse()
        try:
            run = run_of(request)
            d = run.display(int(request.path_params["n"]))
            return resolve(d["media"], runs.roots(request.path_params["run"])), None
        except MediaRefused as e:
            return None, JSONResponse({"error": str(e)}, 403)
        except (KeyError, ValueError, IndexError, FileNotFoundError) as e:
            return None, JSONResponse({"error": str(e) or "No such item."}, 404)

    def media(request: Request) -> Response:  # sync: Starlette runs it in its thread pool
        path, problem = media_path(request)
        if problem is not None:
            return problem
        assert path is not None  # media_path gives the path or the problem
        return FileResponse(
            path,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    def picture_of(request: Request) -> Response:  # sync: Starlette runs it in its thread pool
        path, problem = media_path(request)
        if problem is not None:
            return problem
        assert path is not None  # media_path gives the path or the problem
        try:
            data = cached_picture(
                request.path_params["run"], int(request.path_params["n"]), path.stat().st_mtime
            )
        except Exception as e:  # an undecodable file: said, not a server error page
            return JSONResponse({"error": f"{type(e).__name__}: {e}"}, 422)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=300"})

    async def evaluation(request: Request) -> Response:
        if not authorized(request):
            return refuse()
        if runs.report is None:
            return JSONResponse({"error": "Not an evaluation run."}, 404)
        report = {k: v for k, v in runs.report.items() if k != "items"}
        assert runs.report_dir is not None  # open_runs sets it with the report
        radars = sorted(p.stem.removeprefix("radar_") for p in runs.report_dir.glob("radar_*.png"))
        return JSONResponse(
            {"report": report, "radars": radars, "items": len(runs.report.get("items") or [])}
        )

    def evaluation_items(
        request: Request,
    ) -> Response:  # sync: Starlette runs it in its thread pool
        if not authorized(request):
            return refuse()
        params = request.query_params
        rows = [dict(r, n=i) for i, r in enumerate((runs.report or {}).get("items") or [])]
        for name in ("modality", "axis", "dimension"):
            if params.get(name):
                rows = [r for r in rows if r.get(name) == params[name]]
        text = (params.get("q") or "").lower()
        if text:
            rows = [
                r
                for r in rows
                if text in (r.get("caption") or "").lower() or text in r["instruction"].lower()
            ]
        offset, limit = _int(params.get("offset"), 0), _int(params.get("limit"), 50, 1, PAGE_LIMIT)
        return JSONResponse({"total": len(rows), "items": rows[offset : offset + limit]})

    async def radar(request: Request) -> Response:
        if not authorized(request):
            return refuse()
        name = request.path_params["modality"]
        path = runs.report_dir / f"radar_{name}.png" if runs.report_dir is not None else None
        if path is None or name not in ("image", "video", "audio") or not path.is_file():
            return JSONResponse({"error": "No such chart."}, 404)
        return FileResponse(path, media_type="image/png")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/info", info),
            Route("/api/items", items),
            Route("/api/item", item),
            Route("/api/only", only),
            Route("/api/media/{run}/{n:int}", media),
            Route("/api/picture/{run}/{n:int}", picture_of),
            Route("/api/eval", evaluation),
            Route("/api/eval/items", evaluation_items),
            Route("/api/eval/radar/{modality}", radar),
            *review_routes(runs.reviewed, authorized, refuse, write_token, _query),
        ]
    )
    return HostGuard(app, host, allowed_hosts, keyed=token is not None)


# the page runs its own script only; media and pictures come from this server
CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'"
)
