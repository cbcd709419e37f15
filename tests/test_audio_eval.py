"""AudioCaps and Clotho scores: classic caption metrics through pycocoevalcap, checked on hand-made cases,
against an independent computation of BLEU, ROUGE-L and CIDEr-D written here from their definitions,
and on real data: AudioCaps' test references with the AnyCap release's GPT-4o captions (../shared)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from anycap_plugin.eval import audio_captions as ac
from anycap_plugin.eval.caption_metrics import CaptionScorers, ptb_tokenize

AUDIOCAPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "audiocaps"
needs_data = pytest.mark.skipif(
    not AUDIOCAPS.exists(), reason="../shared/data/audiocaps is not beside the repo"
)
ANYCAP = Path(sys.executable).with_name("anycap")


@pytest.fixture(scope="module")
def scorers():
    with CaptionScorers() as s:
        yield s


# ---- the formulas, written here from their definitions -------------------------------------------------


def ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def bleu(refs: dict[str, list[str]], cands: dict[str, str], n_max: int = 4) -> list[float]:
    """Corpus BLEU as Papineni et al. define it, brevity penalty against each item's closest reference length."""
    correct, guess = [0] * n_max, [0] * n_max
    test_len = ref_len = 0
    for i, cand in cands.items():
        words = cand.split()
        test_len += len(words)
        ref_len += min((abs(len(r.split()) - len(words)), len(r.split())) for r in refs[i])[1]
        for n in range(1, n_max + 1):
            counts = ngrams(words, n)
            most = Counter()
            for r in refs[i]:
                most |= ngrams(r.split(), n)
            correct[n - 1] += sum(min(c, most[g]) for g, c in counts.items())
            guess[n - 1] += max(len(words) - n + 1, 0)
    out, product = [], 1.0
    for n in range(n_max):
        product *= (correct[n] + 1e-15) / (guess[n] + 1e-9)
        out.append(product ** (1 / (n + 1)))
    ratio = (test_len + 1e-15) / (ref_len + 1e-9)
    return [b * math.exp(1 - 1 / ratio) if ratio < 1 else b for b in out]


def lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = (
                table[i - 1][j - 1] + 1
                if a[i - 1] == b[j - 1]
                else max(table[i - 1][j], table[i][j - 1])
            )
    return table[-1][-1]


def rouge_l(refs: list[str], cand: str, beta: float = 1.2) -> float:
    """ROUGE-L (Lin, 2004) over several references as the COCO tools take it: best precision, best recall."""
    words = cand.split()
    prec = max(lcs(words, r.split()) / len(words) for r in refs)
    rec = max(lcs(words, r.split()) / len(r.split()) for r in refs)
    return (1 + beta**2) * prec * rec / (rec + beta**2 * prec) if prec and rec else 0.0


def cider_d(
    refs: dict[str, list[str]], cands: dict[str, str], sigma: float = 6.0
) -> dict[str, float]:
    """CIDEr-D (Vedantam et al., 2015): tf-idf n-gram vectors (n = 1..4) with document frequencies over the
    corpus's references, candidate counts clipped at the reference's, a Gaussian length penalty, times 10."""
    df: Counter = Counter()
    for i in cands:
        df.update({g for r in refs[i] for n in range(1, 5) for g in ngrams(r.split(), n)})
    log_n = math.log(len(cands))

    def vector(text: str) -> tuple[list[dict], int]:
        words = text.split()
        vecs = []
        for n in range(1, 5):
            vecs.append(
                {g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in ngrams(words, n).items()}
            )
        return vecs, len(words)

    scores = {}
    for i, cand in cands.items():
        hyp, hyp_len = vector(cand)
        total = 0.0
        for r in refs[i]:
            ref, ref_len = vector(r)
            penalty = math.exp(-((hyp_len - ref_len) ** 2) / (2 * sigma**2))
            for n in range(4):
                dot = sum(
                    min(v, ref[n].get(g, 0.0)) * ref[n].get(g, 0.0) for g, v in hyp[n].items()
                )
                norms = math.sqrt(sum(v * v for v in hyp[n].values())) * math.sqrt(
                    sum(v * v for v in ref[n].values())
                )
                total += (dot / norms if norms else 0.0) * penalty / 4
        scores[i] = 10 * total / len(refs[i])
    return scores


@needs_data
def test_bleu_rouge_and_cider_equal_the_formulas_on_real_audiocaps_captions(scorers):
    refs = ac.load_references(AUDIOCAPS / "test.csv")
    cands, _ = ac.load_candidates(AUDIOCAPS / "gpt4o_captions.jsonl")
    ids = sorted(set(refs) & set(cands))[:40]
    tok_refs = ptb_tokenize({i: refs[i] for i in ids})
    tok_cands = {i: c[0] for i, c in ptb_tokenize({i: [cands[i]] for i in ids}).items()}
    scores, items, _ = scorers.corpus(tok_refs, tok_cands, tokenize=False)
    assert np.allclose(
        [scores[f"BLEU-{n}"] for n in range(1, 5)], bleu(tok_refs, tok_cands), atol=1e-9
    )
    ours_rouge = [items[i]["ROUGE-L"] for i in ids]
    assert np.allclose(ours_rouge, [rouge_l(tok_refs[i], tok_cands[i]) for i in ids], atol=1e-12)
    assert scores["ROUGE-L"] == pytest.approx(np.mean(ours_rouge))
    cider = cider_d(tok_refs, tok_cands)
    assert np.allclose([items[i]["CIDEr-D"] for i in ids], [cider[i] for i in ids], atol=1e-9)
    assert scores["CIDEr-D"] == pytest.approx(np.mean(list(cider.values())))


def test_hand_checked_cases(scorers):
    refs = {
        "a": ["a dog barks loudly", "a dog is barking"],
        "b": ["rain falls on a tin roof", "heavy rain"],
    }
    same = {"a": "a dog barks loudly", "b": "rain falls on a tin roof"}
    scores, items, missing = scorers.corpus(refs, same, tokenize=False)
    assert scores["BLEU-4"] == pytest.approx(1.0) and items["a"]["ROUGE-L"] == pytest.approx(1.0)
    assert scores["METEOR"] > 0.9 and scores["CIDEr-D"] > 1.0
    assert (
        missing["SPICE"].startswith("SPICE needs the Stanford CoreNLP 3.6.0 jars")
        and scores["SPIDEr"] is None
    )
    other = {"a": "an engine idles", "b": "birds sing at dawn"}
    unrelated, _, _ = scorers.corpus(refs, other, tokenize=False)
    assert unrelated["BLEU-1"] < 0.01 and unrelated["ROUGE-L"] == 0.0 and unrelated["METEOR"] < 0.1
    tokenized = ptb_tokenize({"x": ["A Dog, barking!"]})
    assert tokenized == {
        "x": ["a dog barking"]
    }  # lower case, punctuation dropped: the COCO tools' PTB step


def test_a_clip_scored_alone_has_no_cider(scorers):
    """The release scores each clip as a corpus of one: every n-gram's document frequency is that corpus's
    size, so each weight is log(1) - log(1) = 0 and CIDEr-D is 0 for every clip, whatever the caption."""
    for ref, cand in (("a dog barks", "a dog barks"), ("rain on the roof", "a dog barks")):
        scores, _ = scorers.one_item(ref, cand)
        assert scores["CIDEr-D"] == 0.0 and "BLEU-1" not in scores
        assert scores["ROUGE-L"] == pytest.approx(1.0 if ref == cand else 0.0)


@needs_data
def test_audiocaps_standard_and_release_protocols_on_the_gpt4o_captions(tmp_path):
    refs = ac.load_references(AUDIOCAPS / "test.csv")
    assert len(refs) == 975 and all(len(r) == 5 for r in refs.values())
    lines = (AUDIOCAPS / "gpt4o_captions.jsonl").read_text().splitlines()[:60]
    cands_file = tmp_path / "cands.jsonl"
    extra = [
        json.dumps({"id": "not-a-clip", "caption": "x"}),  # a candidate without a reference
        json.dumps(
            {
                "key": "file:a.wav",
                "input": "audio/a.wav",
                "caption": None,
                "error": {"type": "CorruptMediaError", "message": "Cannot decode audio"},
            }
        ),
    ]
    cands_file.write_text("\n".join(lines + extra) + "\n")
    for protocol in ("standard", "release"):
        out = tmp_path / protocol
        run = subprocess.run(
            [
                str(ANYCAP),
                "eval",
                "audiocaps",
                "--refs",
                str(AUDIOCAPS / "test.csv"),
                "--captions",
                str(cands_file),
                "--protocol",
                protocol,
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "ANYCAP_LOAD_PLUGINS": ""},
        )
        assert run.returncode == 0, run.stderr[-2000:]
        report = json.loads((out / "report.json").read_text())
        counts = report["counts"]
        assert (
            counts["scored"],
            counts["failed_candidates"],
            counts["candidates_without_reference"],
        ) == (60, 1, 1)
        assert counts["references_without_candidate"] == 975 - 60 and report[
            "candidates_without_reference"
        ] == ["not-a-clip"]
        assert report["failed_candidates"][0]["why"] == "CorruptMediaError: Cannot decode audio"
        metrics = report["metrics"]
        assert metrics["SPICE"] is None and "CoreNLP" in report["not_computed"]["SPICE"]
        assert (
            0 < metrics["METEOR"] < 1
            and 0 < metrics["ROUGE-L"] < 1
            and 0 < metrics["Sentence-BERT"] < 1
        )
        if protocol == "standard":
            assert metrics["CIDEr-D"] > 0 and 0 < metrics["BLEU-4"] < metrics["BLEU-1"] < 1
            assert report["setup"]["tokenization"].startswith("PTB")
        else:
            assert metrics["CIDEr-D"] == 0.0 and "BLEU-1" not in metrics
            assert all(item["CIDEr-D"] == 0.0 for item in report["per_item"].values())
        assert len(report["per_item"]) == 60 and len(report["setup"]["references_sha256"]) == 64
        assert "| METEOR |" in (out / "report.md").read_text() and "| METEOR |" in run.stdout


def test_clotho_and_jsonl_references_and_release_files_read_alike(tmp_path):
    clotho = tmp_path / "clotho_captions_evaluation.csv"
    clotho.write_text(
        "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
        'Forest Birds.wav,Birds sing in a forest.,Many birds chirp.,Birdsong in trees.,"Birds, wind.",Chirping\n'
    )
    assert ac.load_references(clotho) == {
        "Forest Birds": [
            "Birds sing in a forest.",
            "Many birds chirp.",
            "Birdsong in trees.",
            "Birds, wind.",
            "Chirping",
        ]
    }
    jsonl = tmp_path / "refs.jsonl"
    jsonl.write_text(
        json.dumps({"id": "clip1", "captions": ["a", "b"]})
        + "\n"
        + json.dumps({"audio_path": "/data/x/clip2.wav", "model_response": "c"})
        + "\n"
    )
    assert ac.load_references(jsonl) == {"clip1": ["a", "b"], "clip2": ["c"]}
    with pytest.raises(ac.AudioCaptionsError, match="neither AudioCaps' nor Clotho's"):
        bad = tmp_path / "bad.csv"
        bad.write_text("x,y\n1,2\n")
        ac.load_references(bad)


def test_without_java_the_command_says_what_to_install(tmp_path):
    refs = tmp_path / "refs.jsonl"
    refs.write_text(json.dumps({"id": "c", "captions": ["a dog"]}) + "\n")
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent),
        "ANYCAP_LOAD_PLUGINS": "",
    }  # no java there
    run = subprocess.run(
        [
            str(ANYCAP),
            "eval",
            "clotho",
            "--refs",
            str(refs),
            "--captions",
            str(refs),
            "-o",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert (
        run.returncode == 2
        and "No `java` on the PATH" in run.stderr
        and "openjdk-17-jre-headless" in run.stderr
    )
    assert "Traceback" not in run.stderr
