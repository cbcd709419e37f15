"""Reviewing a run in `anycap view`, in Debian's Chromium through Playwright against the real server;
and an exported page whose captions hold what could end a script."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx2 as httpx
import pytest
from conftest import CHROMIUM
from test_view import anycap, shot, viewer

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)"
)
TRICKY = ["<!--<script>", "</script><script>window.__xss = 1</script>", "a <!-- b", "&amp;"]


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
    assert page.locator("#review-controls").is_hidden()  # an export is read-only


def review_run(folder: Path) -> tuple[Path, list[dict]]:
    """Six items, two of them failed."""
    records = [
        {
            "key": f"k{i}",
            "caption": f"caption {i} of a cat",
            "instruction": "Describe it.",
            "modality": "image",
            "media": f"m{i}.png",
            "error": None,
        }
        for i in range(4)
    ] + [
        {
            "key": f"k{i}",
            "caption": None,
            "instruction": "Describe it.",
            "modality": "image",
            "media": f"m{i}.png",
            "error": {"type": "MediaNotFoundError", "message": "gone"},
        }
        for i in (4, 5)
    ]
    return folder.joinpath("captions.jsonl"), records


def cell(pg, i: int) -> str:
    return pg.locator("#rows tr").nth(i).locator("td").last.inner_text()


def test_review_by_mouse_keyboard_edit_bulk_two_pages_and_a_restart(browser, tmp_path):
    run, records = review_run(tmp_path)
    run.write_text("".join(json.dumps(r) + "\n" for r in records))
    before = run.read_bytes()
    journal = tmp_path / "captions.reviews.jsonl"
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    pg.on("dialog", lambda d: d.accept())
    with viewer(str(run)) as url:
        pg.goto(url)
        pg.wait_for_function("document.querySelectorAll('#rows tr').length === 6")
        pg.wait_for_function(
            "document.getElementById('reviewed').textContent === '0 of 6 reviewed'"
        )
        # the mouse: open the first item, accept it
        pg.locator("#rows tr").first.click()
        pg.click("#do-accept")
        pg.wait_for_function(
            "document.getElementById('reviewed').textContent === '1 of 6 reviewed'"
        )
        assert cell(pg, 0) == "accepted"
        # the keyboard: the next item rejected, then its caption corrected and tagged
        pg.locator("body").click(position={"x": 5, "y": 5})
        pg.keyboard.press("j")
        pg.keyboard.press("r")
        pg.wait_for_function(
            "document.getElementById('reviewed').textContent === '2 of 6 reviewed'"
        )
        assert cell(pg, 1) == "rejected"
        pg.keyboard.press("e")
        pg.wait_for_function("document.activeElement.id === 'edit-caption'")
        pg.fill("#edit-caption", "a corrected caption </script><!--")
        pg.fill("#edit-tags", "blurry, dark")
        pg.focus("#edit-caption")
        pg.keyboard.press("Control+Enter")
        pg.wait_for_function(
            "document.getElementById('review-status').textContent.includes('edited')"
        )
        assert "a corrected caption </script><!--" in pg.inner_text("#rows tr:nth-child(2)")
        assert cell(pg, 1) == "rejected ✎ · blurry, dark"
        assert pg.locator("#f-tag option[value='blurry']").count() == 1  # a filter at once
        shot(pg, "review")
        # bulk over a filter: reject every failed item
        pg.keyboard.press("Escape")
        pg.select_option("#f-status", "failed")
        pg.wait_for_function("document.querySelectorAll('#rows tr').length === 2")
        pg.click("#bulk-reject")
        pg.wait_for_function(
            "document.getElementById('reviewed').textContent === '4 of 6 reviewed'"
        )
        pg.select_option("#f-status", "")
        pg.select_option("#f-review", "rejected")
        pg.wait_for_function("document.querySelectorAll('#rows tr').length === 3")
        assert "review=rejected" in pg.url
        pg.select_option("#f-review", "")
        pg.select_option("#f-tag", "blurry")
        pg.wait_for_function("document.querySelectorAll('#rows tr').length === 1")
        pg.select_option("#f-tag", "")
        pg.check("#f-edited")
        pg.wait_for_function("document.querySelectorAll('#rows tr').length === 1")
        assert "a corrected caption" in pg.inner_text("#rows")
        pg.uncheck("#f-edited")
        pg.wait_for_function("document.querySelectorAll('#rows tr').length === 6")
        # review state as sorts: accepted, rejected, pending; then the edited caption first
        pg.select_option("#sort", "review")
        pg.wait_for_function(
            "document.querySelector('#rows tr td:last-child').textContent === 'accepted'"
        )
        assert [cell(pg, i).split(" ")[0] for i in range(6)] == ["accepted"] + ["rejected"] * 3 + [
            "pending"
        ] * 2
        assert "sort=review" in pg.url
        pg.select_option("#sort", "edited")
        pg.wait_for_function(
            "document.querySelector('#rows tr td:last-child').textContent.includes('✎')"
        )
        pg.select_option("#sort", "")
        pg.wait_for_function(
            "document.querySelector('#rows tr td:last-child').textContent === 'accepted'"
        )
        # two pages on one item: the later write, made on what it saw, is refused and reloaded
        other = context.new_page()
        other.goto(url + "?sel=2&open=1")
        other.wait_for_selector("#do-reject")
        pg.locator("#rows tr").nth(2).click()
        pg.click("#do-accept")
        pg.wait_for_function(
            "document.getElementById('reviewed').textContent === '5 of 6 reviewed'"
        )
        other.click("#do-reject")
        other.wait_for_function(
            "document.getElementById('review-msg').textContent.includes('changed in another page')"
        )
        assert "accepted" in other.inner_text("#review-status")
        assert json.loads(journal.read_text().splitlines()[-1])["status"] == "accepted"
        # a write without the page's token, or from another origin, is refused
        token = pg.evaluate("WRITE")
        body = json.dumps({"n": 3, "version": 0, "status": "accepted"}).encode()
        base = url.rstrip("/")
        for headers in (
            {"Origin": base},
            {"Origin": "http://evil.example", "X-AnyCap-Write": token},
            {"X-AnyCap-Write": token},
        ):
            r = httpx.post(
                base + "/api/review",
                content=body,
                headers={"Content-Type": "application/json", **headers},
            )
            assert r.status_code == 403, headers
        lines = journal.read_text().splitlines()
    assert len(lines) == 6 and run.read_bytes() == before  # the run never written
    # a resume re-captions the failed k4 (its new record appended): the rejection of the failure
    # is stale for the new record, which filters and sorts as pending
    with run.open("a") as f:
        f.write(json.dumps({**records[4], "caption": "a cat, at last", "error": None}) + "\n")
    # a restart shows every review
    with viewer(str(run)) as url:
        pg.goto(url + "?review=pending")  # k3, never reviewed, and k4's new record
        pg.wait_for_function("document.querySelectorAll('#rows tr').length === 2")
        assert "a cat, at last" in pg.inner_text("#rows tr:nth-child(2)")
        pg.goto(url + "?sort=review&desc=1")
        pg.wait_for_function("document.querySelectorAll('#rows tr').length === 7")
        assert "a cat, at last" in pg.inner_text("#rows tr:nth-child(2)")  # pending, file order
        assert cell(pg, 2).startswith("rejected")
        pg.goto(url + "?review=rejected")
        pg.wait_for_function("document.querySelectorAll('#rows tr').length === 3")
        assert "5 of 7 reviewed" in pg.inner_text("#reviewed")
        assert "a corrected caption" in pg.inner_text("#rows")
        pg.locator("#rows tr").first.click()
        pg.wait_for_selector("#edit-caption")
        assert pg.input_value("#edit-caption") == "a corrected caption </script><!--"
    # the same run as Parquet (`anycap caption -o X.parquet`'s columns), reviewed by keyboard; its
    # journal is X.parquet.reviews.jsonl, which `anycap export` applies
    import pyarrow as pa
    import pyarrow.parquet as pq

    from anycap_plugin.batch.records import arrow_schema, to_arrow_row

    table = tmp_path / "captions.parquet"
    pq.write_table(pa.Table.from_pylist([to_arrow_row(r) for r in records], arrow_schema()), table)
    with viewer(str(table)) as url:
        pg.goto(url)
        pg.wait_for_function("document.querySelectorAll('#rows tr').length === 6")
        pg.locator("#rows tr").nth(1).click()
        pg.keyboard.press("a")
        pg.wait_for_function(
            "document.getElementById('reviewed').textContent === '1 of 6 reviewed'"
        )
        pg.keyboard.press("e")
        pg.wait_for_function("document.activeElement.id === 'edit-caption'")
        pg.fill("#edit-caption", "a cat, seen in a table")
        pg.keyboard.press("Control+Enter")
        pg.wait_for_function(
            "document.getElementById('review-status').textContent.includes('edited')"
        )
    reviews = lines_of(tmp_path / "captions.parquet.reviews.jsonl")
    assert [(r["key"], r["status"], r["caption"]) for r in reviews][-1] == (
        "k1",
        "accepted",
        "a cat, seen in a table",
    )
    out = tmp_path / "accepted.jsonl"
    done = anycap("export", str(table), "--status", "accepted", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert [(r["key"], r["caption"]) for r in lines_of(out)] == [("k1", "a cat, seen in a table")]
    context.close()


def lines_of(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]
