"""Training ACM on the shared ACD sample: record parsing, bad lines, the mix, a real CPU run."""

import json
from pathlib import Path

import pytest

from anycap_plugin import testing
from anycap_plugin.errors import ACDFormatError
from anycap_plugin.train import TrainConfig, mix, parse_ratio, read_acd, train

ACD = sorted(
    (Path(__file__).resolve().parents[2] / "shared" / "data" / "acd_sample").glob("*.jsonl")
)


def test_every_shared_record_parses_into_instruction_existing_and_target():
    examples, problems = read_acd(ACD)
    assert problems == [] and len(examples) == 3588
    kinds = {e.kind for e in examples}
    assert kinds == {"degraded", "weaker", "correct", "plain"}
    for e in examples:
        assert (
            "<image>" not in e.instruction and "You are a multimodal aligner" not in e.instruction
        )
        assert e.existing is None or "The existing caption is" not in e.existing
    plain = next(e for e in examples if e.kind == "plain")
    assert plain.existing is None and plain.modality == "audio"
    correct = next(e for e in examples if e.kind == "correct")
    assert correct.existing.strip(" '.")[:40] == correct.target[:40]  # q-c-c: already the target


def test_bad_lines_are_reported_by_line_number(tmp_path):
    good = ACD[0].read_text().splitlines()[0]
    f = tmp_path / "acd.jsonl"
    f.write_text("\n".join([good, "{broken", json.dumps({"conversations": []}), good]) + "\n")
    examples, problems = read_acd([f])
    assert len(examples) == 2 and len(problems) == 2
    assert problems[0].startswith(f"{f}:2:") and problems[1].startswith(f"{f}:3:")
    with pytest.raises(ACDFormatError, match=":2: invalid JSON"):
        read_acd([f], on_error="raise")


def test_mix_follows_the_ratio():
    examples, _ = read_acd(ACD)
    mixed = mix(examples, parse_ratio("2:2:1"))
    count = {k: sum(e.kind == k for e in mixed) for k in ("degraded", "weaker", "correct", "plain")}
    assert count["degraded"] == count["weaker"] == 2 * count["correct"] and count["plain"] == 600
    with pytest.raises(Exception, match="degraded:weaker:correct"):
        parse_ratio("2:2")


def test_short_cpu_run_lowers_validation_loss_by_30_percent(tmp_path):
    model = testing.build_tiny_acm(tmp_path / "acm")
    result = train(
        TrainConfig(
            model=str(model),
            data=[str(p) for p in ACD],
            output_dir=str(tmp_path / "run"),
            max_steps=150,
            batch_size=8,
            learning_rate=5e-3,
            missing_media="text",
            max_length=384,
            eval_steps=75,
            save_steps=75,
            max_examples=400,
        )
    )
    assert result["val_loss_after"] <= 0.7 * result["val_loss_before"], result
    assert result["parameters"]["frozen"] > 0 and result["steps"] == 150
    final = Path(result["model"])
    assert (final / "model.safetensors").exists() and (final / "processor_config.json").exists()
    assert list((tmp_path / "run").glob("checkpoint-*"))  # resumable


def test_missing_media_is_an_error_unless_told_otherwise(tmp_path):
    with pytest.raises(Exception, match="no media file"):
        train(
            TrainConfig(
                model="unused",
                data=[str(ACD[0])],
                output_dir=str(tmp_path),
                media_root=str(tmp_path),
            )
        )
