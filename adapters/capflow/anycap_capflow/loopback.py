"""A CapFlow-aware responder for the loopback chat server (tests, benchmarks, offline demos):
`python -m anycap_plugin.testing.server --responder anycap_capflow.loopback:respond`.

It answers each role of the default workflow in the form the prompts ask for: the router picks
`video_temporal` for several frames and `natural` for one image (confidence 3), agents return
notes, the summary joins them, the judge gives every dimension a 3.
"""

from __future__ import annotations

import json
import re
from typing import Any

from anycap_plugin.testing import last_text


def prompt_and_images(body: dict[str, Any]) -> tuple[str, int]:
    """The last message's text and how many images came with it."""
    content = body["messages"][-1]["content"]
    images = 0 if isinstance(content, str) else sum(p.get("type") == "image_url" for p in content)
    return last_text(body), images


def respond(body: dict[str, Any]) -> str:
    text, images = prompt_and_images(body)
    if "You are the router" in text:
        return json.dumps(
            {"domain": "video_temporal" if images > 1 else "natural", "confidence": 3}
        )
    agent = re.search(r"You are the (\w+) agent", text)
    if agent:
        return f"{agent.group(1)} notes on {images} image(s)."
    if "quality judge" in text:
        dims = re.findall(r"^- (\w+)$", text, re.MULTILINE)
        return json.dumps({"scores": {d: 3 for d in dims}, "reason": "loopback"})
    if "notes of specialist agents" in text:
        notes = re.findall(r"^\[(\w+) agent\]\n(.*)$", text, re.MULTILINE)
        return "Caption from " + ", ".join(kind for kind, _ in notes) + "."
    return "unexpected prompt"
