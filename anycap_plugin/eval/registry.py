"""The one registry of benchmarks: `anycap eval NAME`, the VLMEvalKit datasets and the lmms-eval
tasks are all built from it.

A benchmark is one `Benchmark` (one module: `anycap_plugin/eval/benchmarks/` holds the built-in
ones), registered through the plugins' `register_benchmarks` hook as `register(benchmark)`. Each
one says how its references are loaded, its candidates read, scored and reported (`run`, behind
its `anycap eval NAME` options), and what each harness makes of it, or why a harness holds none.
Entries are light: everything heavy is imported when a benchmark runs, never when it is listed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


@dataclass(frozen=True)
class LmmsTask:
    """One lmms-eval task a benchmark writes: its samples (`id`, `modality`, `media` path,
    `instruction`, `reference`), its metric names, and `spec`, the settings its scorer reads back."""

    name: str
    docs: list[dict[str, Any]]
    metrics: list[str]
    spec: dict[str, Any]
    max_new_tokens: int = 512
    tag: str = ""  # lmms-eval's group name for `--tasks TAG` (default: the benchmark's name)


@dataclass(frozen=True)
class LmmsTasks:
    """A benchmark in `anycap lmms-eval-tasks`: the options that give its data, the tasks they make,
    and how one task's captions are scored.

    `tasks(values, settings)`: the command's option values (all of them, by parameter name) and the
    folder's shared settings (`judge`, `repeats`, `judge_cache`) -> its tasks ([] when its options
    are not given). `report(spec, settings, captions, folder)`: captions by sample id (None: the
    model failed on it) -> the report, written under `folder`. `metric(report, spec, name)`: one
    figure of that report (None: not computed)."""

    options: Sequence[Decorator]
    tasks: Callable[[dict[str, Any], dict[str, Any]], list[LmmsTask]]
    report: Callable[[dict[str, Any], dict[str, Any], dict[str, str | None], Path], dict[str, Any]]
    metric: Callable[[dict[str, Any], dict[str, Any], str], float | None]


@dataclass(frozen=True)
class Benchmark:
    """One benchmark and what each harness makes of it.

    `options` and `run(**values)`: the `anycap eval NAME` command (load the references, read the
    candidates, score, write the report; False: some items failed, the exit status is 1). `vlmeval()`: its VLMEvalKit dataset classes (imported on
    call, VLMEvalKit is heavy). `lmms_eval`: its lmms-eval tasks. Where a harness cannot hold the
    benchmark, `no_vlmeval` / `no_lmms_eval` say why (the docs and `anycap eval --help` show it)."""

    name: str
    description: str
    modalities: tuple[str, ...]
    options: Sequence[Decorator] = ()
    run: Callable[..., bool] | None = None
    vlmeval: Callable[[], Sequence[type]] | None = None
    lmms_eval: LmmsTasks | None = None
    no_cli: str = ""
    no_vlmeval: str = ""
    no_lmms_eval: str = ""

    def __post_init__(self) -> None:
        for harness, built, reason in (
            ("anycap eval", self.run, self.no_cli),
            ("VLMEvalKit", self.vlmeval, self.no_vlmeval),
            ("lmms-eval", self.lmms_eval, self.no_lmms_eval),
        ):
            if (built is None) == (not reason):
                raise ValueError(
                    f"Benchmark {self.name!r}: give either its {harness} entry or the reason it has none."
                )

    def harnesses(self) -> dict[str, str]:
        """Harness -> "yes", or why it holds no such entry (what the docs' table shows)."""
        return {
            "anycap eval": "yes" if self.run else self.no_cli,
            "VLMEvalKit": "yes" if self.vlmeval else self.no_vlmeval,
            "lmms-eval": "yes" if self.lmms_eval else self.no_lmms_eval,
        }
