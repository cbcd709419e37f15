"""Classic caption metrics as the COCO caption tools compute them, through their reference
implementation (`pycocoevalcap`): PTB tokenization (Java), BLEU-1..4, METEOR (Java), ROUGE-L,
CIDEr-D, and SPICE when the Stanford CoreNLP 3.6.0 jars are at hand (SPICE downloads them
otherwise, which an offline machine cannot). SPIDEr is (CIDEr-D + SPICE) / 2.

`corpus` scores a set of items the standard way (one corpus, all references of each item);
`one_item` scores a single item as a corpus of one, which is what the AnyCap release's script
does for every clip (its CIDEr-D is then always 0: the document frequencies of a one-item corpus
make every n-gram weight log(1) = 0).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from ..errors import MetricsUnavailable

CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
JAVA_HINT = (
    "pycocoevalcap's PTB tokenizer and METEOR run on Java: apt-get install openjdk-17-jre-headless."
)


def check_tools() -> dict[str, str]:
    """The versions the scores depend on; refuses when pycocoevalcap or Java is missing."""
    try:
        version = importlib.metadata.version("pycocoevalcap")
    except importlib.metadata.PackageNotFoundError:
        raise MetricsUnavailable(
            "The caption metrics need pycocoevalcap.",
            hint="pip install pycocoevalcap==1.2 (make does it for the dev environment).",
        ) from None
    java = shutil.which("java")
    if java is None:
        raise MetricsUnavailable("No `java` on the PATH.", hint=JAVA_HINT)
    shown = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    return {
        "pycocoevalcap": version,
        "java": (shown.stderr or shown.stdout).splitlines()[0].strip(),
    }


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the tools' own chatter (BLEU's prints, the JVM's progress lines) off our output; shown on failure."""
    with tempfile.TemporaryFile() as log:
        saved = [os.dup(1), os.dup(2)]
        try:
            for fd in (1, 2):
                os.dup2(log.fileno(), fd)
            yield
        except Exception as e:
            for fd, old in zip((1, 2), saved):
                os.dup2(old, fd)
            log.seek(0)
            said = log.read().decode("utf-8", "replace")[-2000:]
            if isinstance(e, FileNotFoundError):
                raise MetricsUnavailable(
                    f"A caption metric could not start: {e}.", hint=JAVA_HINT
                ) from None
            raise MetricsUnavailable(
                f"A caption metric failed: {type(e).__name__}: {e}. {said}".strip()
            ) from None
        finally:
            for fd, old in zip((1, 2), saved):
                os.dup2(old, fd)
                os.close(old)


def ptb_tokenize(texts: dict[str, list[str]]) -> dict[str, list[str]]:
    """Stanford's PTB tokenizer, as the COCO tools run it (lower case, punctuation dropped)."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    with _quiet():
        return PTBTokenizer().tokenize({k: [{"caption": t} for t in v] for k, v in texts.items()})


class CaptionScorers:
    """The scorers, started once (METEOR keeps one JVM for all its calls)."""

    def __init__(self, corenlp_dir: Path | None = None) -> None:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge

        self.corenlp_dir = corenlp_dir
        self._seconds: dict[
            str, float
        ] = {}  # per metric, summed over calls (the JVM's start-up aside)
        self.bleu, self.rouge, self.cider = Bleu(4), Rouge(), Cider()
        with (
            _quiet(),
            self._timed("JVM start (METEOR)"),
        ):  # started once and warmed, so METEOR's time is scoring
            self.meteor = Meteor()
            self.meteor.compute_score({"warm-up": ["a sound"]}, {"warm-up": ["a sound"]})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.meteor.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def corpus(
        self,
        refs: dict[str, list[str]],
        cands: dict[str, str],
        *,
        tokenize: bool = True,
        bleu: bool = True,
    ) -> tuple[dict[str, float | None], dict[str, dict[str, float]], dict[str, str]]:
        """(corpus scores, per-item scores, metrics not computed and why) for the items in `cands`."""
        ids = sorted(cands)
        # whitespace runs, line breaks included, become one space: METEOR's jar reads one line per item, and
        # the other scorers split on whitespace anyway
        gts = {i: [" ".join(r.split()) for r in refs[i]] for i in ids}
        res = {i: [" ".join(cands[i].split())] for i in ids}
        if tokenize:
            with self._timed("PTB tokenizer"):
                gts, res = ptb_tokenize(gts), ptb_tokenize(res)
        scores: dict[str, float | None] = {}
        items: dict[str, dict[str, float]] = {i: {} for i in ids}
        with _quiet():
            if bleu:
                with self._timed("BLEU"):
                    totals, per_n = self.bleu.compute_score(gts, res)
                for n in range(4):
                    scores[f"BLEU-{n + 1}"] = float(totals[n])
                    for i, value in zip(ids, per_n[n]):
                        items[i][f"BLEU-{n + 1}"] = float(value)
            for name, scorer in (
                ("METEOR", self.meteor),
                ("ROUGE-L", self.rouge),
                ("CIDEr-D", self.cider),
            ):
                with self._timed(name):
                    score, per_item = scorer.compute_score(gts, res)
                scores[name] = float(score)
                for i, value in zip(ids, per_item):
                    items[i][name] = float(value)
        missing: dict[str, str] = {}
        try:
            with self._timed("SPICE"):
                score, spice_items = spice(gts, res, self.corenlp_dir)
            scores["SPICE"], scores["SPIDEr"] = score, (float(scores["CIDEr-D"] or 0) + score) / 2
            for i, value in zip(ids, spice_items):
                items[i]["SPICE"], items[i]["SPIDEr"] = value, (items[i]["CIDEr-D"] + value) / 2
        except MetricsUnavailable as e:
            scores["SPICE"] = scores["SPIDEr"] = None
            missing["SPICE"] = missing["SPIDEr"] = e.message
        return scores, items, missing

    @contextlib.contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        import time

        started = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - started

    @property
    def seconds(self) -> dict[str, float]:
        return {name: round(value, 3) for name, value in self._seconds.items()}

    def one_item(self, ref: str, cand: str) -> tuple[dict[str, float | None], dict[str, str]]:
        """One clip on its own, as a corpus of one, untokenized, against one reference string: what the
        AnyCap release's script computes for every clip (no BLEU there)."""
        scores, _, missing = self.corpus({"0": [ref]}, {"0": cand}, tokenize=False, bleu=False)
        return scores, missing


def corenlp_jars(corenlp_dir: Path | None) -> list[Path] | None:
    """The two CoreNLP 3.6.0 jars SPICE needs: in `corenlp_dir`, or where pycocoevalcap keeps them."""
    import pycocoevalcap.spice as spice_package

    for folder in (corenlp_dir, Path(spice_package.__file__).parent / "lib"):
        if folder is not None and all((Path(folder) / j).exists() for j in CORENLP_JARS):
            return [Path(folder) / j for j in CORENLP_JARS]
    return None


def spice(
    gts: dict[str, list[str]], res: dict[str, list[str]], corenlp_dir: Path | None
) -> tuple[float, list[float]]:
    """SPICE through pycocoevalcap's jar, run here so that nothing is downloaded: its `lib/` is laid
    out in a temporary folder with the CoreNLP jars added."""
    import numpy as np
    import pycocoevalcap.spice as spice_package

    jars = corenlp_jars(corenlp_dir)
    if jars is None:
        raise MetricsUnavailable(
            "SPICE needs the Stanford CoreNLP 3.6.0 jars (" + ", ".join(CORENLP_JARS) + "), "
            "which pycocoevalcap downloads on first use; not computed.",
            hint="Pass --corenlp-dir with the two jars (from stanford-corenlp-full-2015-12-09.zip).",
        )
    home = Path(spice_package.__file__).parent
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "lib").mkdir()
        os.symlink(home / "spice-1.0.jar", work / "spice-1.0.jar")
        for jar in [*(home / "lib").glob("*.jar"), *jars]:
            target = work / "lib" / jar.name
            if not target.exists():
                os.symlink(jar.resolve(), target)
        ids = sorted(gts)
        (work / "in.json").write_text(
            json.dumps([{"image_id": i, "test": res[i][0], "refs": gts[i]} for i in ids])
        )
        with _quiet():
            subprocess.run(
                [
                    "java",
                    "-jar",
                    "-Xmx8G",
                    str(work / "spice-1.0.jar"),
                    str(work / "in.json"),
                    "-cache",
                    str(work / "cache"),
                    "-out",
                    str(work / "out.json"),
                    "-subset",
                    "-silent",
                ],
                check=True,
                cwd=work,
            )
        results = {
            r["image_id"]: r["scores"]["All"]["f"]
            for r in json.loads((work / "out.json").read_text())
        }
    per_item = [float(results[i]) if results[i] is not None else float("nan") for i in ids]
    return float(np.nanmean(per_item)), per_item


def sentence_similarity(
    refs: dict[str, list[str]], cands: dict[str, str], folder: Path | None = None
) -> tuple[float, dict[str, float]]:
    """Sentence-BERT cosine similarity of each candidate with its references (the mean over them), and
    the mean over items; `folder` is a sentence-transformer folder (default: the bundled MiniLM)."""
    import numpy as np

    from .offline import SentenceEmbedder

    embedder = SentenceEmbedder(folder)
    ids = sorted(cands)
    texts = [cands[i] for i in ids] + [r for i in ids for r in refs[i]]
    vectors = dict(zip(texts, embedder.embed(texts)))
    per_item = {i: float(np.mean([vectors[cands[i]] @ vectors[r] for r in refs[i]])) for i in ids}
    return (float(np.mean(list(per_item.values()))) if per_item else float("nan")), per_item
