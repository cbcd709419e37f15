"""`anycap view RUN --export page.html`: one self-contained HTML file (the viewer's page, the first
N items and their pictures inlined) for someone without AnyCap. Search, filters and sorting work in
the page over those items; media players need the server, pictures do not."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from .app import STATIC
from .index import RunIndex
from .media import picture, resolve


def export_page(
    run: Path, target: Path, *, limit: int = 1000, media_roots: list[Path] | None = None
) -> dict[str, int]:
    index = RunIndex(run).start()
    index.wait()
    roots = [Path(run).parent, *(media_roots or [])]
    items: list[dict[str, Any]] = []
    pictures: dict[int, str] = {}
    for n in range(min(limit, index.count)):
        d = index.display(n)
        items.append(d)
        try:
            jpeg = picture(resolve(d["media"], roots), d["modality"])
            pictures[n] = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
        except Exception:  # noqa: S112 - a missing, refused or undecodable file: no picture
            continue
    data = {
        "mode": "run",
        "runs": {
            "a": {
                "name": Path(run).name,
                "count": index.count,
                "done": True,
                "error_types": list(index.error_types),
            }
        },
        "items": items,
        "pictures": pictures,
    }
    embedded = script_json(data)
    page = (
        (STATIC / "index.html")
        .read_text()
        .replace(
            '<script id="anycap-data" type="application/json">null</script>',
            f'<script id="anycap-data" type="application/json">{embedded}</script>',
            1,
        )
    )
    target.write_text(page)
    return {"items": len(items), "pictures": len(pictures), "of": index.count}


def script_json(data: Any) -> str:
    """JSON safe inside a `<script>` element: `</script`, `<!--` and `<script` change how an HTML
    parser reads a script's text (the last two hide the next `</script>`, so the page ends early),
    so every `<`, `>` and `&` is written as its `\\u` escape: the same string to `JSON.parse`."""
    return (
        json.dumps(data, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
