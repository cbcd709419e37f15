"""ACD records, as the release writes them (InternVL SFT conversations, `../shared/data/acd_sample/`):
the human turn carries the aligner prompt with the instruction and the existing caption, the gpt
turn the target caption; `_sample_type` says which existing caption it is. `anycap train` reads
them as they are.
"""

from __future__ import annotations

from typing import Any

# the records' wording, as in the release's files
ALIGNER = (
    "You are a multimodal aligner, and your task is to transform the existing caption into a caption that "
    "better meets the requirements. The requirement is: '{question}'. The existing caption is: '{existing}'. "
    "You only need to answer the caption that better meets the requirements, and do not add anything else."
)
PLACEHOLDER = {"image": "<image>\n", "video": "<video>\n", "audio": "<audio>\n"}
SAMPLE_TYPES = {"degraded": "q-a-c", "weaker": "q-8b-c", "correct": "q-c-c"}


def acd_record(
    *,
    record_id: str,
    modality: str,
    media: str,
    question: str,
    existing: str,
    target: str,
    kind: str,
    dimension: str,
    key: str,
    extra: dict[str, Any] | None = None,
    source: str = "anycap synth",
) -> dict[str, Any]:
    human = PLACEHOLDER[modality] + ALIGNER.replace("{question}", question).replace(
        "{existing}", existing
    )
    return {
        "id": record_id,
        modality: media,
        **(extra or {}),
        "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": target}],
        "_sample_type": SAMPLE_TYPES[kind],
        "_dimension": dimension,
        "_key": key,
        "_source": source,
    }
