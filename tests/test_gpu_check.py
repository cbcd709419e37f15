"""The GPU check is ready for the first lent GPU: its dry run lists every check and what each lacks here."""

import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_the_dry_run_says_what_it_would_run_and_what_is_missing():
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--oracle", str(ROOT / "nowhere")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    plan = {row["check"]: row for row in summary["plan"]}
    assert list(plan) == ["golden_bf16", "gpu_tests", "serve_lmdeploy", "local_batching_2b"]
    assert abs(sum(row["budget_share"] for row in plan.values()) - 1.0) < 1e-9
    assert summary["environment"]["torch"] == torch.__version__.split("+")[0]
    assert any(
        "golden fixture" in m for m in plan["golden_bf16"]["missing"]
    )  # --oracle points nowhere
    if not torch.cuda.is_available():
        assert all(
            not row["would_run"] and any("CUDA" in m for m in row["missing"])
            for row in plan.values()
        )
    assert "golden_bf16" not in summary  # a dry run runs nothing
