"""Reviewing a run in `anycap view`, in Debian's Chromium through Playwright against the real server;
and an exported page whose captions hold what could end a script."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_view import CHROMIUM, anycap

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)"
)
TRICKY = ["<!--<script>", "</script><script>window.__xss = 1</script>", "a <!-- b", "&amp;"]


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    # Playwright evaluates its waits as strings, which the page's CSP forbids
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    yield pg
    context.close()


def write_run(path: Path, captions: list[str]) -> Path:
    path.write_text(
        "".join(
            json.dumps({"key": f"k{i}", "caption": c, "modality": "image", "error": None}) + "\n"
            for i, c in enumerate(captions)
        )
    )
    return path


def test_an_export_whose_captions_could_end_a_script_renders_every_row(page, tmp_path):
    captions = [*TRICKY, "plain words"]
    run = write_run(tmp_path / "run.jsonl", captions)
    target = tmp_path / "page.html"
    done = anycap("view", str(run), "--export", str(target))
    assert done.returncode == 0, done.stderr
    page.goto(target.as_uri())
    page.wait_for_selector(
        "#rows tr", timeout=10_000
    )  # none came when `<!--<script>` hid the data's end
    assert page.locator("#rows tr").count() == len(captions)
    shown = page.inner_text("#rows")
    assert all(c in shown for c in captions)
    assert page.evaluate("window.__xss === undefined")
