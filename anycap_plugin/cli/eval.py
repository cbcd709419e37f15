"""`anycap eval ...`: one subcommand per registered benchmark, comparisons, and caption manifests."""

from __future__ import annotations

import inspect
import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .exit_codes import AnyCapCommand, AnyCapGroup, finish

if TYPE_CHECKING:
    from ..eval.registry import Benchmark


class BenchmarkGroup(AnyCapGroup):
    """A subcommand per registered benchmark (`eval/registry.py`), beside the group's own commands."""

    _own: MutableMapping[str, click.Command]
    _made: set[str]

    @property
    def commands(self) -> MutableMapping[str, click.Command]:
        """The group's own commands and one per registered benchmark, as the registry has them now
        (plugins may be reloaded); the same dict each time, so `add_command` keeps working."""
        from ..plugins import benchmarks

        current = {n: b for n, b in benchmarks().items() if b.run is not None}
        for name in self._made - set(current):
            self._own.pop(name, None)
        made = set()
        for name, benchmark in current.items():
            if name in self._made or name not in self._own:  # the group's own commands win
                self._own[name] = benchmark_command(benchmark)
                made.add(name)
        self._made = made
        return self._own

    @commands.setter
    def commands(self, value: MutableMapping[str, click.Command]) -> None:
        self._own, self._made = value, set()

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from ..plugins import benchmarks

        super().format_help_text(ctx, formatter)
        for name, b in benchmarks().items():
            if b.run is None:
                formatter.write_paragraph()
                with formatter.indentation():
                    formatter.write_text(f"Not a subcommand: {name}: {b.no_cli}")


def benchmark_command(benchmark: Benchmark) -> click.Command:
    """`anycap eval NAME`: the benchmark's own options and `run`; exit 1 when items failed."""
    run = benchmark.run
    assert run is not None

    def command(**values: Any) -> None:
        if not run(**values):
            finish(False)

    for option in reversed(benchmark.options):
        command = option(command)
    return AnyCapCommand(
        benchmark.name,
        callback=command,
        params=list(reversed(getattr(command, "__click_params__", []))),
        help=inspect.getdoc(run) or benchmark.description,
        short_help=benchmark.description,
    )


@click.group("eval", cls=BenchmarkGroup)
def eval_group() -> None:
    """Evaluate captions on the registered benchmarks (AnyCapEval, VidCapBench, AudioCaps, Clotho,
    and those plugins add); compare two runs; write caption manifests."""


@eval_group.command("compare")
@click.argument("a", type=click.Path(exists=True))
@click.argument("b", type=click.Path(exists=True))
def compare_command(a: str, b: str) -> None:
    """Print B's tables with deltas against A (report.json files or their folders); warn when the
    two were judged under setups whose numbers are not comparable."""
    from ..eval.report import comparability_warnings, compare

    def read(p: str) -> dict:
        path = Path(p) / "report.json" if Path(p).is_dir() else Path(p)
        return json.loads(path.read_text())

    ra, rb = read(a), read(b)
    for warning in comparability_warnings(ra, rb):
        click.echo(f"warning: {warning}", err=True)
    click.echo(compare(ra, rb))


@eval_group.command("manifest")
@click.option(
    "--refs", "refs", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False)
)
@click.option("--media-root", required=True, type=click.Path(file_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path))
def manifest_command(refs: tuple[str, ...], media_root: str, output: Path) -> None:
    """Write an `anycap caption` manifest (id, media, instruction) for these references."""
    from ..eval.references import caption_manifest, load_references

    rows = caption_manifest(load_references(refs), media_root)
    output.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    click.echo(f"wrote {len(rows)} items to {output}", err=True)
