"""What is installed: `anycap models`, `anycap plugins`, and the benchmarks plugins register (`anycap bench`)."""

from __future__ import annotations

import json

import click

from ..command_line import parse_options
from ..errors import OptionsError, UnknownCaptionerError
from ..plugins import plugins, registrations
from .exit_codes import AnyCapCommand


@click.command("models", cls=AnyCapCommand)
@click.argument("pattern", default="*")
@click.option(
    "--options",
    "options_of",
    metavar="NAME",
    help="Show one captioner's or post-processor's options.",
)
def models(pattern: str, options_of: str | None) -> None:
    """List registered captioners and post-processors (wildcards allowed)."""
    import fnmatch

    if options_of is not None:
        _show_options(options_of)
        return
    for kind in ("captioner", "post-processor"):
        rows = [r for n, r in sorted(registrations(kind).items()) if fnmatch.fnmatch(n, pattern)]
        click.echo(f"{kind}s:")
        for r in rows:
            click.echo(f"  {r.name:<16} {r.description}  [{r.plugin}]")
        if not rows:
            click.echo("  (none)")


@click.command("bench", cls=AnyCapCommand)
@click.argument("name", required=False)
@click.option("--model", "-m", help="Captioner spec the benchmark evaluates (a chain works).")
@click.option(
    "--arg", "-A", "args", multiple=True, metavar="KEY=VALUE", help="A benchmark argument."
)
def bench_command(name: str | None, model: str | None, args: tuple[str, ...]) -> None:
    """Run a benchmark a plugin registered (`register_benchmarks`) on a captioner and print its JSON
    result; without NAME, list the registered benchmarks."""
    from ..eval.registry import Benchmark
    from ..plugins import get_benchmark
    from ..wrapping import build_captioner

    if name is None:
        rows = sorted(registrations("benchmark").items())
        for n, r in rows:
            how = (
                "  (scores caption files: see anycap eval --help)"
                if isinstance(r.factory, Benchmark)
                else ""
            )
            click.echo(f"  {n:<16} {r.description}  [{r.plugin}]{how}")
        if not rows:
            click.echo("  (no benchmarks registered)")
        return
    benchmark = get_benchmark(name)
    if isinstance(benchmark.factory, Benchmark):
        raise OptionsError(
            f"{name!r} scores captions from files; it does not run a captioner.",
            hint="Caption its references with `anycap caption`; `anycap eval --help` says where it is scored.",
        )
    if not model:
        raise click.UsageError("Name the captioner to benchmark: --model SPEC.")
    captioner = build_captioner(model)
    click.echo(
        json.dumps(
            benchmark.factory(captioner, **parse_options(args, "--arg")),
            indent=2,
            ensure_ascii=False,
        )
    )


def _show_options(name: str) -> None:
    """A registration's spec form, modalities and per-call options (name, type, default)."""
    found = [
        r
        for kind in ("captioner", "post-processor")
        for n, r in registrations(kind).items()
        if n == name
    ]
    if not found:
        import difflib

        known = sorted({n for kind in ("captioner", "post-processor") for n in registrations(kind)})
        raise UnknownCaptionerError(
            name,
            "captioner/post-processor",
            difflib.get_close_matches(name, known, n=3, cutoff=0.5),
            known,
        )
    for r in found:
        form = {True: f"{name}:MODEL", False: name, None: f"{name}[:MODEL]"}[r.needs_model]
        click.echo(f"{r.kind} {form}  [{r.plugin}]  {r.description}")
        click.echo(
            f"  modalities: {', '.join(sorted(r.modalities)) if r.modalities else 'decided by the model'}"
        )
        click.echo("  per-call options (anycap caption --option KEY=VALUE for a base captioner):")
        options = r.options_class()
        fields = getattr(options, "model_fields", {}) if options is not None else {}
        if options is None:
            click.echo("  options: not declared by the plugin")
        elif not fields:
            click.echo("  options: none")
        for field_name, field in fields.items():
            kind = getattr(field.annotation, "__name__", None) or str(field.annotation).replace(
                "typing.", ""
            )
            click.echo(f"  {field_name}: {kind} = {field.default!r}")
        _show_at_scale(r.factory)


def _show_at_scale(factory: object) -> None:
    """What a captioner class says of running it at scale (`at_scale()`: the HF engine's families)."""
    from ..hookspecs import Deferred

    cls = factory.load() if isinstance(factory, Deferred) else factory
    at_scale = getattr(cls, "at_scale", None)
    if callable(at_scale):
        click.echo("  at scale:")
        for line in at_scale():
            click.echo(f"    {line}")


@click.command("plugins", cls=AnyCapCommand)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(as_json: bool) -> None:
    """List installed plugins: distribution, version, hooks, and errors of broken ones."""
    infos = plugins()
    if as_json:
        click.echo(json.dumps([vars(p) for p in infos], indent=2))
        return
    for p in infos:
        dist = f"{p.distribution or '?'} {p.version or ''}".strip()
        status = f"BROKEN: {p.error}" if p.error else ", ".join(p.hooks)
        click.echo(f"{p.name:<20} {dist:<32} {status}")
