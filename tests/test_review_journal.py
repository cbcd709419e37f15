"""The review journal beside a run: latest line per key, torn lines aside, stale reviews, versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anycap_plugin.batch.outputs import run_files
from anycap_plugin.errors import ReviewError, StaleReviewError
from anycap_plugin.view.reviews import ReviewJournal, read_reviews, record_hash

RECORDS = [
    {"key": "k0", "caption": "a cat on a mat", "instruction": "Describe it.", "error": None},
    {"key": "k1", "caption": "a dog", "instruction": "Describe it.", "error": None},
]


@pytest.fixture()
def run(tmp_path) -> Path:
    path = tmp_path / "captions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_writes_append_whole_reviews_and_the_latest_per_key_wins(run):
    before = run.read_bytes()
    journal = ReviewJournal(run)
    assert journal.path == run.with_name("captions.reviews.jsonl")
    first = journal.write("k0", RECORDS[0], {"status": "rejected", "tags": ["blurry"]}, 0)
    second = journal.write("k0", RECORDS[0], {"caption": "a cat on a red mat"}, 1)
    journal.write("k1", RECORDS[1], {"status": "accepted", "note": "fine"}, 0)
    journal.close()
    assert (first.version, second.version) == (1, 2)
    written = lines(journal.path)
    assert len(written) == 3 and written[1]["tags"] == ["blurry"]  # each line whole, not a change
    assert written[1]["of"] == record_hash(RECORDS[0]) and written[1]["at"].endswith("+00:00")
    reopened = ReviewJournal(run)  # a restart reads every review
    latest = reopened.get("k0")
    assert latest is not None and latest.version == 2
    assert (latest.status, latest.caption, latest.tags) == (
        "rejected",
        "a cat on a red mat",
        ("blurry",),
    )
    assert reopened.get("k1").note == "fine"
    reopened.close()
    assert run.read_bytes() == before  # the run is never written
    assert str(journal.path) in run_files(str(run))  # and a resume never reads the reviews


def test_a_torn_line_is_moved_aside_and_the_rest_kept(run):
    path = run.with_name("captions.reviews.jsonl")
    whole = json.dumps({"key": "k1", "status": "accepted", "caption": None, "tags": []})
    path.write_text(whole + '\nnot a review\n{"key": "k0", "status": "rej')
    assert read_reviews(path)[1] == 2  # a reader skips what it cannot read
    journal = ReviewJournal(run)
    assert journal.moved_aside == 2
    assert journal.get("k1").status == "accepted" and journal.get("k0") is None
    journal.write("k0", RECORDS[0], {"status": "accepted"}, 0)
    journal.close()
    aside = run.with_name("captions.reviews.rejected.jsonl").read_text()
    assert "not a review" in aside and '"rej' in aside
    assert [x["key"] for x in lines(path)] == ["k1", "k0"]


def test_a_review_of_a_changed_record_is_stale_and_one_without_of_applies(run):
    path = run.with_name("captions.reviews.jsonl")
    path.write_text(
        json.dumps({"key": "k0", "status": "rejected", "caption": "x", "of": "0" * 24})
        + "\n"
        + json.dumps({"key": "k1", "status": "accepted", "caption": "a brown dog"})  # by hand
        + "\n"
    )
    journal = ReviewJournal(run)
    stale = journal.get("k0").shown(RECORDS[0])
    assert stale["stale"] and stale["status"] == "pending" and not stale["edited"]
    by_hand = journal.get("k1").shown(RECORDS[1])
    assert not by_hand["stale"] and by_hand["status"] == "accepted" and by_hand["edited"]
    # a write over a stale review starts afresh: its caption and tags were for another record
    fresh = journal.write("k0", RECORDS[0], {"tags": ["checked"]}, 1)
    assert (fresh.status, fresh.caption, fresh.tags) == ("pending", None, ("checked",))
    journal.close()


def test_a_write_on_an_older_version_is_refused(run):
    journal = ReviewJournal(run)
    journal.write("k0", RECORDS[0], {"status": "accepted"}, 0)  # one tab
    with pytest.raises(StaleReviewError, match="Reload the item"):
        journal.write("k0", RECORDS[0], {"status": "rejected"}, 0)  # the other, on what it saw
    assert journal.get("k0").status == "accepted" and len(lines(journal.path)) == 1
    journal.write("k0", RECORDS[0], {"status": "rejected"}, 1)  # after reloading
    assert journal.get("k0").version == 2
    journal.close()


def test_bad_reviews_get_typed_errors_and_a_second_viewer_reads_only(run):
    journal = ReviewJournal(run)
    for change, message in (
        ({"status": "maybe"}, "Unknown review status"),
        ({"caption": 3}, "is text"),
        ({"caption": "  "}, "cannot be empty"),
        ({"tags": "a,b"}, "list of text"),
        ({"tags": ["x" * 65]}, "At most"),
        ({"score": 1}, "Unknown review field"),
    ):
        with pytest.raises(ReviewError, match=message):
            journal.write("k0", RECORDS[0], change, 0)
    # the original caption sent back means unchanged
    assert journal.write("k0", RECORDS[0], {"caption": RECORDS[0]["caption"]}, 0).caption is None
    other = ReviewJournal(run)
    assert other.read_only and "Another viewer" in other.read_only
    assert other.get("k0").version == 1
    with pytest.raises(ReviewError, match="Another viewer"):
        other.write("k1", RECORDS[1], {"status": "accepted"}, 0)
    journal.close()


def test_filters_and_sorts_by_review_state_leave_stale_reviews_out(tmp_path):
    """The index side of the page's review filters and sorts, over a run a resume appended to."""
    import numpy as np

    from anycap_plugin.view.index import Query, RunIndex
    from anycap_plugin.view.review_api import ReviewedRun

    records = [{"key": f"k{i}", "caption": f"c{i}", "error": None} for i in range(4)]
    path = tmp_path / "captions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    journal = ReviewJournal(path)
    journal.write("k1", records[1], {"status": "rejected"}, 0)
    journal.write("k2", records[2], {"status": "accepted", "caption": "better", "tags": ["x"]}, 0)
    journal.write("k3", records[3], {"status": "accepted"}, 0)
    journal.write("gone", {"key": "gone"}, {"status": "accepted"}, 0)  # a key the run lacks
    journal.close()
    with path.open("a") as f:  # a resume re-captioned k2: its review is stale for the new record
        f.write(json.dumps({**records[2], "caption": "c2 again"}) + "\n")
    index = RunIndex(path, keys=True).start()
    assert index.wait(30)
    reviewed = ReviewedRun(index, ReviewJournal(path))
    rows = index.select(Query())

    def narrow(review="", tag="", edited=False) -> list[int]:
        return reviewed.narrow(rows, review, tag, edited).tolist()

    assert narrow("accepted") == [2, 3] and narrow("pending") == [0, 4]
    assert narrow(tag="x") == [2] and narrow(edited=True) == [2]
    assert reviewed.order(rows, "review", False).tolist() == [2, 3, 1, 0, 4]
    assert reviewed.order(rows, "review", True).tolist() == [0, 4, 1, 2, 3]
    assert reviewed.order(rows, "edited", False).tolist() == [2, 0, 1, 3, 4]
    assert reviewed.order(np.array([4, 3]), "words", False).tolist() == [4, 3]  # not ours
    # "n of N reviewed" counts the rows the filters count: k1, k2's first record and k3; not
    # k2's new record (stale) nor the key the run does not hold
    assert reviewed.reviewed() == len(narrow("accepted")) + len(narrow("rejected")) == 3
    path.write_text("".join(json.dumps({**r, "caption": "new"}) + "\n" for r in records))
    rerun = RunIndex(path, keys=True).start()  # every record re-captioned: every review stale
    assert rerun.wait(30)
    assert ReviewedRun(rerun, reviewed.journal).reviewed() == 0
    reviewed.journal.close()
