"""The prompts ACD synthesis sends: ours by default, or the release's own (`--prompts DIR`).

The release's files (`AnyCapDataset/anycapdataset_{m}/...`, copied verbatim in
`../shared/data/acd_synthesis_prompts/`):
- `{image,video}/qc_instructions/<type>.txt`: the model writes a question of that control type
  and its answer ("Question: ... Answer: ..."); no placeholders.
- `{image,video}/qca_instructions/<type>.txt`, `audio/qca_instruction/<Type>.txt`: a question and
  a good answer in (`{}` `{}` in that order, or `{question}` / `{standard_caption}` in video), a
  slightly inferior answer out.
Where the release has no file for a dimension (audio questions, image/video `region` and
`length`), our prompt is used and the run's summary says so. The release's question prompts
state no length constraint: we add the constraint after the prompt as a text of its own (a
difference from the release, which drew constraints in a separate step).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..call_engine import fill
from ..errors import OptionsError
from ..eval.length_rules import RELEASE_TABLE
from ..instructions import InstructionType

# the release's file stem for each (modality, type); genre is poem or narrative, drawn per item
RELEASE_STEMS: dict[str, dict[str, tuple[str, ...]]] = {
    "image": {
        "instance": ("instance",),
        "instance_appearance": ("appearance",),
        "instance_position": ("position",),
        "perspective": ("perspective",),
        "brief": ("brief",),
        "detail": ("detail",),
        "genre": ("poem", "narrative"),
        "theme": ("theme",),
    },
    "video": {
        "background": ("background",),
        "event": ("event",),
        "instance": ("instance",),
        "instance_action": ("action",),
        "instance_appearance": ("appearance",),
        "instance_position": ("position",),
        "movement": ("camera",),
        "perspective": ("perspective",),
        "brief": ("brief",),
        "detail": ("detail",),
        "genre": ("poem", "narrative"),
        "theme": ("theme",),
    },
    "audio": {
        "brief": ("Brief",),
        "detail": ("Detail",),
        "event": ("Event",),
        "genre": ("Poem", "Narrative"),
    },
}
_QC_DIR = {"image": "image/qc_instructions", "video": "video/qc_instructions"}
_QCA_DIR = {
    "image": "image/qca_instructions",
    "video": "video/qca_instructions",
    "audio": "audio/qca_instruction",
}

FOCUS = {
    "background": "describe only the background and setting, not the main subjects",
    "event": "describe the events that happen, in the order they happen",
    "instance": "describe one kind of object, named in the question, and nothing else",
    "instance_action": "describe what one subject, named in the question, does",
    "instance_appearance": "describe the appearance of one subject, named in the question",
    "instance_position": "describe where one subject, named in the question, is relative to the others",
    "movement": "describe how the camera moves",
    "perspective": "describe the content from a viewpoint named in the question (e.g. from above, through a character's eyes)",
    "region": "describe one region of the image, named in the question (e.g. the upper-left corner), and nothing else",
    "brief": "a brief caption of the main content",
    "detail": "a detailed caption that covers everything perceivable",
    "genre": "a caption written in the genre named in the question ({genre})",
    "length": "a caption whose length is what the question controls",
    "theme": "a caption centred on a theme or mood named in the question",
}

OUR_QC = """You write training data for a controllable captioner. Look at (or listen to) this {media} and write one question of the control type below, and its answer.
Control type: {type_name} - {focus}.
The question asks for a caption of this kind. The answer does exactly what the question asks, states only what can be perceived in the {media}, and meets this length requirement: "{constraint}"
Reply in exactly this form:
Question: <the question>
Answer: <the answer>"""

OUR_QCA = """Here is a question about a {media} and a good answer to it. Write a slightly inferior answer: keep it close to the good one, but introduce one or two minor inaccuracies, leave out one small relevant detail, and add one speculative element. Do not make it entirely wrong or irrelevant.
Question: {question}
Answer: {answer}
Reply in exactly this form:
New Answer (Slightly Inferior): <the inferior answer>"""

RELEASE_QC_SUFFIX = (
    "Additional requirement: the answer must meet this length requirement, and the question "
    'must end with it word for word: "{constraint}"'
)

# constraint sentences (the release's table) that suit each type; drawn per item and type
_CONSTRAINTS = {
    "brief": (
        "needs to be one sentence.",
        "needs to be no more than 10 words.",
        "needs to be 10 to 20 words.",
    ),
    "detail": ("needs to be 30 to 120 words.", "needs to be exactly five sentences."),
    "genre": ("needs to be 30 to 120 words.", "needs to be 20 to 30 words."),
    "length": tuple(s.removeprefix("The generated caption's length ") for s in RELEASE_TABLE),
}
_DEFAULT_CONSTRAINTS = (
    "cannot exceed two sentences.",
    "cannot exceed three sentences.",
    "needs to be 20 to 30 words.",
    "needs to be 10 to 20 words.",
)


def draw(key: str, choices: tuple[str, ...]) -> str:
    """A stable choice per key: the same item and type get the same draw on every run."""
    return choices[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(choices)]


def constraint_for(itype: InstructionType, key: str) -> str:
    return "The generated caption's length " + draw(
        "constraint:" + key, _CONSTRAINTS.get(itype.key, _DEFAULT_CONSTRAINTS)
    )


@dataclass(frozen=True)
class Prompt:
    text: str
    source: str  # "ours" or the release file it came from


class PromptSet:
    """Question and degradation prompts per (modality, type): the release's files under `root`
    where it has them, ours elsewhere (or everywhere without `root`)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else None
        if self.root is not None and not any(
            (self.root / d).is_dir() for d in {*_QC_DIR.values(), *_QCA_DIR.values()}
        ):
            raise OptionsError(
                f"{self.root} holds none of the release's prompt folders "
                f"({', '.join(sorted({*_QC_DIR.values(), *_QCA_DIR.values()}))}).",
                hint="Point --prompts at the release's AnyCapDataset prompt tree "
                "(e.g. ../shared/data/acd_synthesis_prompts).",
            )

    def _release(
        self, folder: dict[str, str], modality: str, itype: InstructionType, key: str
    ) -> Path | None:
        stems = RELEASE_STEMS.get(modality, {}).get(itype.key)
        if self.root is None or stems is None or modality not in folder:
            return None
        path = self.root / folder[modality] / f"{draw('genre:' + key, stems)}.txt"
        return path if path.is_file() else None

    def question(self, modality: str, itype: InstructionType, key: str, constraint: str) -> Prompt:
        path = self._release(_QC_DIR, modality, itype, key)
        if path is not None:
            assert self.root is not None  # _release finds files under root only
            return Prompt(
                path.read_text(encoding="utf-8")
                + "\n\n"
                + RELEASE_QC_SUFFIX.replace("{constraint}", constraint),
                str(path.relative_to(self.root)),
            )
        genre = draw("genre:" + key, ("poem", "narrative"))
        focus = FOCUS[itype.key].replace("{genre}", genre)
        return Prompt(
            fill(OUR_QC, media=modality, type_name=itype.name, focus=focus, constraint=constraint),
            "ours",
        )

    def degrade(
        self, modality: str, itype: InstructionType, key: str, question: str, answer: str
    ) -> Prompt:
        path = self._release(_QCA_DIR, modality, itype, key)
        if path is None:
            return Prompt(fill(OUR_QCA, media=modality, question=question, answer=answer), "ours")
        text = path.read_text(encoding="utf-8")
        if "{question}" in text:  # the release's video files name their placeholders
            text = fill(text, question=question, standard_caption=answer)
        else:  # the others have two bare `{}`: question, then answer
            text = text.replace("{}", question, 1).replace("{}", answer, 1)
        assert self.root is not None  # _release finds files under root only
        return Prompt(text, str(path.relative_to(self.root)))


_QA = re.compile(
    r"Question\s*\d*\s*[:：]\s*(?P<q>.+?)\s*\n\s*(?:\*\*)?Answer\s*\d*\s*[:：]\s*(?:\*\*)?\s*(?P<a>.+?)"
    r"\s*(?=\n\s*Question\s*\d*\s*[:：]|\Z)",
    re.DOTALL | re.IGNORECASE,
)
_INFERIOR = re.compile(
    r"(?:New Answer\s*\(slightly inferior\)|Generated Caption)\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*(.+)",
    re.DOTALL | re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"<(?:image|video|audio)>(?:\\n|\n)?\s*")


def parse_question_answer(text: str) -> tuple[str, str]:
    """The first "Question: ... Answer: ..." pair of a reply; ValueError when there is none."""
    m = _QA.search(text)
    if not m or not m.group("a").strip():
        raise ValueError(f"no 'Question: ... Answer: ...' pair in {text[:80]!r}")
    return _PLACEHOLDER.sub("", m.group("q")).strip(), m.group("a").strip()


def parse_inferior(text: str) -> str:
    """The inferior answer: after its label when the reply has one, else the whole reply."""
    m = _INFERIOR.search(text)
    answer = (m.group(1) if m else text).strip()
    if not answer:
        raise ValueError("empty inferior answer")
    return answer


def with_constraint(question: str, constraint: str) -> str:
    """The question ending with its constraint sentence, exactly once."""
    return (question.replace(constraint, "").strip() + " " + constraint).strip()
