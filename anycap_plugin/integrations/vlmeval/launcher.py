"""`anycap vlmeval`: VLMEvalKit's own run flow (`vlmeval.run`) with an AnyCap model registered.

The judge key travels in `OPENAI_API_KEY` (VLMEvalKit's judges read it there), never on a
command line, and is redacted from every log line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def run(
    spec: str,
    data: list[str],
    *,
    model_name: str = "AnyCap",
    work_dir: str = "./outputs",
    data_root: str | None = None,
    judge: str | None = None,
    judge_base_url: str | None = None,
    judge_args: str | None = None,
    mode: str = "all",
    api_nproc: int = 4,
    limit: int | None = None,
    reuse: bool = True,
    options: dict[str, Any] | None = None,
    post_options: dict[str, Any] | None = None,
    concurrent: bool = False,
) -> dict[str, Any]:
    """Run (infer and/or evaluate) `spec` on VLMEvalKit datasets; returns the run's status per dataset."""
    from ...contained.vlmeval import add_env_secrets, import_vlmeval
    from .registry import register

    if data_root is not None:
        os.environ["LMUData"] = str(Path(data_root).resolve())
    import_vlmeval()
    add_env_secrets()
    register(
        {model_name: spec}, post_options=post_options, concurrent=concurrent, **(options or {})
    )
    import vlmeval.run as vrun
    from vlmeval.smp.status_report import load_run_status

    argv = [
        "vlmeval",
        "--model",
        model_name,
        "--data",
        *data,
        "--work-dir",
        work_dir,
        "--mode",
        mode,
        "--api-nproc",
        str(api_nproc),
    ]
    argv += ["--judge", judge] if judge else []
    argv += ["--judge-base-url", judge_base_url] if judge_base_url else []
    argv += ["--judge-args", judge_args] if judge_args else []
    argv += ["--limit", str(limit)] if limit else []
    argv += ["--reuse"] if reuse else []
    with _argv(argv):
        args = vrun.parse_args()
    vrun.run_task(args)
    return load_run_status(Path(work_dir) / model_name).get("datasets", {})
