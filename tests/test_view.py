"""`anycap view` in a real browser: Debian's Chromium driven by Playwright, against the real server.

Screenshots of the main views go to out/screenshots/ (printed with -s)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import CHROMIUM
from eval_data import SHARED

from anycap_plugin import testing
from anycap_plugin.testing import ChatCompletionsServer, judge_responder

pytest.importorskip("playwright.sync_api")
SHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)"
)


def anycap(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "anycap_plugin", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )
    return done


@contextmanager
def viewer(*args: str) -> Iterator[str]:
    """`anycap view ARGS --port 0`: its URL while it runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "anycap_plugin", "view", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        assert match, line + proc.stderr.read()
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two caption runs over real media (stats; stats then a tiny ACM), with a missing file and an
    instruction holding markup; a third run without one item; an evaluation folder."""
    folder = tmp_path_factory.mktemp("runs")
    media = folder / "media"
    media.mkdir()
    for name in ("astronaut", "chelsea", "coffee"):
        shutil.copy(testing.sample_image(name), media / f"{name}.png")
    shutil.copy(testing.sample_video(), media / "bunny.mp4")
    audio = testing.sample_audio()
    shutil.copy(audio, media / f"clip{audio.suffix}")
    rows = [
        {
            "media": f"media/{p.name}",
            "id": p.stem,
            "instruction": "Describe it in at most two sentences.",
        }
        for p in sorted(media.iterdir())
    ]
    rows += [
        {"media": "media/missing.png", "id": "missing", "instruction": "Describe it."},
        {"media": "media/coffee.png", "id": "markup", "instruction": f"{XSS} What is this?"},
    ]
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    acm = testing.build_tiny_acm(folder / "acm", init_std=0.5)
    for out, extra in (("base.jsonl", []), ("acm.jsonl", ["--post", f"acm:{acm}"])):
        done = anycap(
            "caption", "manifest.jsonl", "--model", "stats", *extra, "-o", out, cwd=folder
        )
        assert done.returncode in (0, 1), done.stderr
    lines = (folder / "acm.jsonl").read_text().splitlines()
    (folder / "acm_less.jsonl").write_text(
        "".join(line + "\n" for line in lines if '"id": "chelsea"' not in line)
    )
    # an evaluation: real AnyCapEval references, captions of ours, a loopback judge
    refs = []
    for axis in ("content", "style"):
        src = SHARED / "anycapeval" / "image" / f"anycapeval_image_ref_{axis}.jsonl"
        ref = folder / src.name
        ref.write_text("".join(src.read_text().splitlines(keepends=True)[:4]))
        refs.append(ref)
    cands = folder / "cands.jsonl"
    cands.write_text(
        "".join(
            json.dumps(
                {
                    "id": str(json.loads(line)["id"]),
                    "caption": json.loads(line)["conversations"][1]["value"],
                }
            )
            + "\n"
            for ref in refs
            for line in ref.read_text().splitlines()
        )
    )
    with ChatCompletionsServer(responder=judge_responder) as judge:
        done = anycap(
            "eval",
            "anycapeval",
            *[a for r in refs for a in ("--refs", str(r))],
            "--captions",
            str(cands),
            "--judge-model",
            "gpt-4o-mini",
            "--judge-base-url",
            judge.base_url,
            "-o",
            str(folder / "eval"),
        )
    assert done.returncode == 0, done.stderr
    return folder


def shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"))
    print(f"screenshot: {SHOTS / name}.png")


def rows_of(pg) -> int:
    return pg.locator("#rows tr").count()


def test_a_caption_run_filtered_searched_sorted_and_read_with_the_keyboard(runs, page):
    with viewer(str(runs / "acm.jsonl")) as url:
        page.goto(url)
        page.wait_for_selector("#rows tr")
        assert rows_of(page) == 7
        page.wait_for_function(
            "[...document.querySelectorAll('#rows img.thumb')].some(i => i.naturalWidth > 0)"
        )
        # failed items only: one, with its error type; the URL keeps the view
        page.select_option("#f-status", "failed")
        page.wait_for_function("document.querySelectorAll('#rows tr').length === 1")
        assert "MediaNotFoundError" in page.inner_text("#rows")
        assert "status=failed" in page.url
        page.goto(page.url)
        page.wait_for_function("document.querySelectorAll('#rows tr').length === 1")
        page.select_option("#f-status", "")
        page.wait_for_function("document.querySelectorAll('#rows tr').length === 7")  # not stale
        # search: the instruction with markup, shown as text
        page.keyboard.press("/")
        page.keyboard.type("window.__xss")
        page.wait_for_function("document.querySelectorAll('#rows tr').length === 1")
        assert "<script>" in page.inner_text("#rows")
        assert page.evaluate("window.__xss === undefined")
        page.fill("#search", "")
        page.wait_for_function("document.querySelectorAll('#rows tr').length === 7")
        # sort by caption length, longest first
        page.select_option("#sort", "words")
        page.check("#desc")
        page.wait_for_function("location.search.includes('desc=1')")
        page.wait_for_timeout(300)
        words = [
            json.loads(line).get("caption")
            for line in (runs / "acm.jsonl").read_text().splitlines()
        ]
        longest = max((w for w in words if w), key=lambda c: len(c.split()))
        assert page.locator("#rows tr").first.inner_text().find(longest.split()[0]) >= 0
        page.select_option("#sort", "")
        page.uncheck("#desc")
        page.wait_for_timeout(300)
        # the keyboard: down twice, open, the video's detail; on to the audio clip
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("k")
        page.keyboard.press("Enter")
        page.wait_for_selector("#detail video")
        assert "bunny" in page.inner_text("#detail h2")
        assert page.locator("#detail mark.ins").count() > 0  # the words the ACM changed
        assert "base caption" in page.inner_text("#detail").lower()
        assert "random: a smoke-test model" in page.inner_text("#detail")  # a tiny ACM made it
        shot(page, "run-video-detail")
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.wait_for_selector("#detail audio")
        assert page.locator("#detail img").first.get_attribute("alt") == "spectrogram"
        shot(page, "run-audio-detail")
        page.keyboard.press("Escape")
        assert page.locator("#detail").is_hidden()
        assert "open=1" not in page.url


def test_two_runs_side_by_side(runs, page):
    with viewer(str(runs / "acm.jsonl"), str(runs / "acm_less.jsonl")) as url:
        page.goto(url)
        page.wait_for_selector("#rows tr")
        page.wait_for_function("document.getElementById('only-a').children.length === 1")
        assert "only in A (acm.jsonl): 1" in page.inner_text("#only")
        assert "(not in this run)" in page.inner_text("#rows")
    with viewer(str(runs / "base.jsonl"), str(runs / "acm.jsonl")) as url:
        page.goto(url)
        page.wait_for_selector("#rows tr")
        page.locator("#rows tr").first.click()
        page.wait_for_selector("#detail .pair")
        detail = page.inner_text("#detail")
        assert "A: base.jsonl" in detail and "B: acm.jsonl" in detail
        assert (
            page.locator("#detail .pair mark.ins").count() > 0
            and page.locator("#detail .pair del").count() > 0
        )
        shot(page, "compare")


def test_an_evaluation_run_shows_matched_key_points(runs, page):
    with viewer(str(runs / "eval")) as url:
        page.goto(url)
        page.wait_for_selector("#eval-tables table")
        assert "image · content" in page.inner_text("#eval-tables")
        page.select_option("#f-axis", "content")
        page.wait_for_function(
            "[...document.querySelectorAll('#rows tr')].every(r => r.innerText.includes('content'))"
        )
        page.locator("#rows tr").first.click()
        page.wait_for_selector("#detail ul.points")
        assert (
            page.locator("#detail li.matched").count() >= 1
            and page.locator("#detail li.unmatched").count() >= 1
        )
        assert (
            page.locator("#detail mark.key").count() >= 1
        )  # the matched key points' words, in the caption
        assert "judge: loopback" in page.inner_text("#detail ul.points")  # the judge's reasons
        shot(page, "evaluation")


def test_media_outside_the_run_is_refused_and_markup_stays_text(runs, page, tmp_path):
    crafted = tmp_path / "crafted"
    crafted.mkdir()
    shutil.copy(testing.sample_image("coffee"), crafted / "ok.png")
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the viewer")
    (crafted / "link.png").symlink_to(outside)
    records = [
        {
            "key": "xss",
            "caption": XSS,
            "base_caption": "plain",
            "media": "ok.png",
            "modality": "image",
            "instruction": "<b>bold?</b>",
            "error": None,
        },
        {"key": "up", "caption": "c", "media": "../secret.txt", "modality": "image", "error": None},
        {"key": "abs", "caption": "c", "media": str(outside), "modality": "image", "error": None},
        {"key": "link", "caption": "c", "media": "link.png", "modality": "image", "error": None},
        {
            "key": "<img src=x onerror=alert(1)>.png",
            "caption": None,
            "error": {"type": "MediaError", "message": XSS},
        },
    ]
    run = crafted / "run.jsonl"
    run.write_text("".join(json.dumps(r) + "\n" for r in records) + "{not json\n")
    with viewer(str(run)) as url:

        def status(path: str) -> int:
            try:
                with urllib.request.urlopen(url.rstrip("/") + path) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        assert status("/api/media/a/0") == 200
        assert (
            status("/api/media/a/1") == 403
            and status("/api/media/a/2") == 403
            and status("/api/media/a/3") == 403
        )
        assert status("/api/media/a/9") == 404 and status("/api/media/c/0") == 404
        page.goto(url)
        page.wait_for_selector("#rows tr")
        assert rows_of(page) == 6  # the unreadable line is an item too, failed
        assert "UnreadableLine" in page.inner_text("#rows")
        page.locator("#rows tr").first.click()
        page.wait_for_selector("#detail .field")
        assert "<script>window.__xss = 1</script>" in page.inner_text("#detail")
        page.locator("#rows tr").nth(4).click()
        page.wait_for_timeout(300)
        assert page.evaluate("window.__xss === undefined")
        assert page.locator("img[src='x']").count() == 0


def test_a_token_beyond_loopback(runs, tmp_path):
    refused = anycap("view", str(runs / "acm.jsonl"), "--host", "0.0.0.0")
    assert refused.returncode == 2 and "without a token" in refused.stderr
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anycap_plugin",
            "view",
            str(runs / "acm.jsonl"),
            "--port",
            "0",
            "--token",
            "s3cret-token",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"(http://\S+)", proc.stdout.readline()).group(1)
        assert url.endswith("?token=s3cret-token")
        base = url.split("?")[0].rstrip("/")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/api/info")
        assert e.value.code == 401
        request = urllib.request.Request(
            base + "/api/info", headers={"Authorization": "Bearer s3cret-token"}
        )
        assert json.loads(urllib.request.urlopen(request).read())["mode"] == "run"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_exported_page_works_without_anycap(runs, page, tmp_path):
    target = tmp_path / "page.html"
    done = anycap("view", str(runs / "acm.jsonl"), "--export", str(target), "--limit", "7")
    assert done.returncode == 0, done.stderr
    html = target.read_text()
    assert (
        "http://" not in html.replace("http://www.w3.org", "") and 'src="/' not in html
    )  # nothing to fetch
    page.goto(target.as_uri())
    page.wait_for_selector("#rows tr")
    assert rows_of(page) == 7
    assert (
        page.locator("#rows img.thumb")
        .first.get_attribute("src")
        .startswith("data:image/jpeg;base64,")
    )
    page.fill("#search", "window.__xss")
    page.wait_for_function("document.querySelectorAll('#rows tr').length === 1")
    assert page.evaluate("window.__xss === undefined")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail .field")
    shot(page, "export")


def test_the_index_filters_sorts_and_reads_parquet(runs, tmp_path):
    from anycap_plugin.view.index import Query, RunIndex

    lines = []
    for i in range(3000):
        failed = i % 7 == 0
        lines.append(
            json.dumps(
                {
                    "key": f"k{i}",
                    "caption": None if failed else "word " * (i % 50 + 1),
                    "error": {"type": "CaptionerError" if i % 2 else "MediaError", "message": "x"}
                    if failed
                    else None,
                    "modality": "image",
                    "meta": {"complies": i % 3 == 0},
                    "timings": {"base": i / 1000},
                }
            )
        )
    lines.insert(10, "garbage")
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")
    index = RunIndex(path).start()
    assert index.wait(60)
    assert index.count == 3001
    failed = index.select(Query(status="failed"))
    assert len(failed) == 3000 // 7 + 1 + 1  # every 7th, plus the unreadable line
    media_errors = index.select(Query(error="MediaError"))
    assert all(index.record(int(n))["error"]["type"] == "MediaError" for n in media_errors)
    by_length = index.select(Query(status="ok", sort="words", descending=True))
    lengths = [len(index.record(int(n))["caption"].split()) for n in by_length[:100]]
    assert lengths == sorted(lengths, reverse=True) and lengths[0] == 50
    assert len(index.select(Query(text="k2999"))) == 1
    # Parquet output of `anycap caption`
    done = anycap(
        "caption",
        "manifest.jsonl",
        "--model",
        "stats",
        "-o",
        str(tmp_path / "run.parquet"),
        cwd=runs,
    )
    assert done.returncode in (0, 1), done.stderr
    parquet = RunIndex(tmp_path / "run.parquet").start()
    assert parquet.wait(60) and parquet.count == 7
    assert len(parquet.select(Query(status="failed"))) == 1
    assert (
        parquet.display(0)["caption"]
        == json.loads((runs / "base.jsonl").read_text().splitlines()[0])["caption"]
    )
