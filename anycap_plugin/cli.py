"""The `anycap` command. Exit status: 0 all done, 1 some items failed, 2 usage errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .errors import AnyCapError, OptionsError, UnknownCaptionerError
from .plugins import check_spec, plugin_manager, plugins, registrations


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _build(model: str, post: str | None) -> Any:
    """The captioner a command runs; what keeps it from being built (an unknown name, a bad option,
    a missing key or model folder) is a usage error, exit 2."""
    from .wrapping import build_captioner

    try:
        return build_captioner(model, post)
    except AnyCapError as e:
        raise click.UsageError(str(e)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anycap-plugin")
def cli() -> None:
    """Controllable captioning: a base captioner, then an instruction-following post-processor."""


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--model", "-m", required=True, help="Base captioner spec, e.g. openai:gpt-4o-mini.")
@click.option("--post", "-p", help="Post-processor spec, e.g. acm:/models/acm (default: none).")
@click.option("--instruction", "-i", help="Instruction for every input (a manifest may set its own).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL, or .parquet (journal: OUTPUT.journal.jsonl); re-running with the same file resumes.")
@click.option("--concurrency", "-c", default=1, show_default=True, type=click.IntRange(1),
              help="Batches in flight at once (API captioners); actors with --engine ray.")
@click.option("--batch-size", "-b", default=1, show_default=True, type=click.IntRange(1),
              help="Items per model call (local models).")
@click.option("--option", "-O", "options", multiple=True, metavar="KEY=VALUE", help="Per-call captioner option.")
@click.option("--media-root", help="Where relative media paths of conversation JSON start (default: its folder).")
@click.option("--media-column", help="Parquet / hf: column with the media (path, bytes or {bytes, path}).")
@click.option("--id-column", help="Parquet / hf: column with the item id.")
@click.option("--instruction-column", help="Parquet / hf: column with each item's instruction.")
@click.option("--sidecars", is_flag=True, help="Also write SHARD.captions.jsonl beside WebDataset shards.")
@click.option("--sidecar-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the sidecars here instead of beside the shards.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--ray-address", help="Ray cluster to join (host:port or 'auto'; default: start a local one).")
@click.option("--gpus-per-actor", default=0.0, show_default=True, type=click.FloatRange(0), help="With --engine ray.")
@click.option("--cpus-per-actor", default=1.0, show_default=True, type=click.FloatRange(0),
              help="With --engine ray; below 1 for API captioners.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal only).")
def caption(inputs: tuple[str, ...], model: str, post: str | None, instruction: str | None, output: Path,
            concurrency: int, batch_size: int, options: tuple[str, ...], media_root: str | None,
            media_column: str | None, id_column: str | None, instruction_column: str | None, sidecars: bool,
            sidecar_dir: Path | None, engine: str, ray_address: str | None, gpus_per_actor: float,
            cpus_per_actor: float, progress: bool | None) -> None:
    """Caption INPUT... into one record each: files, folders, globs, JSONL manifests, LLaVA/InternVL
    conversation JSON, WebDataset shards (.tar), Parquet tables, hf:NAME[:SPLIT] datasets."""
    from .batch import plan_inputs, run
    from .batch.outputs import finish_outputs, journal_for
    from .captioner import _validate_options

    parsed = _parse_options(options)
    try:  # everything that can be refused is refused before any work, on either engine
        plan = plan_inputs(inputs, instruction, media_root=media_root,
                           columns={"media": media_column, "id": id_column, "instruction": instruction_column})
        if engine == "ray":
            from .batch.ray_engine import connect, run_on_ray

            spec = f"{model}+{post}" if post else model
            check_spec(spec, parsed)  # the spec, its options, its key or model folder: on the driver
        else:
            captioner = _build(model, post)
            _validate_options(captioner.Options, captioner.id, parsed)
    except AnyCapError as e:
        raise click.UsageError(str(e)) from None
    journal = journal_for(output)
    try:
        if engine == "ray":
            connect(ray_address)  # an unreachable cluster fails here, before any work
            summary = run_on_ray(spec, plan, journal, batch_size=batch_size, concurrency=concurrency,
                                 num_gpus=gpus_per_actor, num_cpus=cpus_per_actor, options=parsed, progress=progress)
        else:
            summary = run(captioner, plan.items(), journal, batch_size=batch_size, concurrency=concurrency,
                          options=parsed, progress=progress, total=plan.count)
    except OptionsError as e:
        raise click.UsageError(str(e)) from None
    written = finish_outputs(output, sidecars=sidecars, sidecar_dir=sidecar_dir)
    _report(summary, output, journal)
    for path in written:
        if path != output:
            click.echo(f"wrote {path}", err=True)
    sys.exit(0 if summary.ok else 1)


def _report(summary: Any, output: Path, journal: Path) -> None:
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(summary.errors.items()))
    click.echo(f"{summary.succeeded} captioned, {summary.failed} failed"
               f"{' (' + errors + ')' if errors else ''}, {summary.skipped} already done "
               f"-> {output} [{summary.seconds:.1f}s]", err=True)
    if summary.repeated_ids:
        click.echo(f"{summary.repeated_ids} inputs share an id with an earlier input: each has a record of its own "
                   "(join on `key`, which names the source and place)", err=True)
    if summary.duplicates:
        click.echo(f"{summary.duplicates} inputs were named twice: captioned once", err=True)
    if summary.rejected:
        rejected = journal.with_name(journal.stem + ".rejected.jsonl")
        click.echo(f"{summary.rejected} unreadable lines of {journal} were moved to {rejected}", err=True)


@cli.command()
@click.argument("pattern", default="*")
@click.option("--options", "options_of", metavar="NAME", help="Show one captioner's or post-processor's options.")
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


@cli.command("bench")
@click.argument("name", required=False)
@click.option("--model", "-m", help="Captioner spec the benchmark evaluates (a chain works).")
@click.option("--arg", "-A", "args", multiple=True, metavar="KEY=VALUE", help="A benchmark argument.")
def bench_command(name: str | None, model: str | None, args: tuple[str, ...]) -> None:
    """Run a benchmark a plugin registered (`register_benchmarks`) on a captioner and print its JSON
    result; without NAME, list the registered benchmarks."""
    import json

    from .plugins import get_benchmark

    if name is None:
        rows = sorted(registrations("benchmark").items())
        for n, r in rows:
            click.echo(f"  {n:<16} {r.description}  [{r.plugin}]")
        if not rows:
            click.echo("  (no benchmarks registered)")
        return
    if not model:
        raise click.UsageError("Name the captioner to benchmark: --model SPEC.")
    try:
        benchmark = get_benchmark(name)
    except UnknownCaptionerError as e:
        raise click.UsageError(str(e)) from None
    captioner = _build(model, None)
    click.echo(json.dumps(benchmark.factory(captioner, **_parse_options(args)), indent=2, ensure_ascii=False))


def _show_options(name: str) -> None:
    """A registration's spec form, modalities and per-call options (name, type, default)."""
    found = [r for kind in ("captioner", "post-processor") for n, r in registrations(kind).items() if n == name]
    if not found:
        known = sorted({n for kind in ("captioner", "post-processor") for n in registrations(kind)})
        raise click.UsageError(f"No captioner or post-processor named {name!r}. Known: {', '.join(known)}.")
    for r in found:
        form = {True: f"{name}:MODEL", False: name, None: f"{name}[:MODEL]"}[r.needs_model]
        click.echo(f"{r.kind} {form}  [{r.plugin}]  {r.description}")
        click.echo(f"  modalities: {', '.join(sorted(r.modalities)) if r.modalities else 'decided by the model'}")
        click.echo("  per-call options (anycap caption --option KEY=VALUE for a base captioner):")
        options = r.options_class()
        fields = getattr(options, "model_fields", {}) if options is not None else {}
        if options is None:
            click.echo("  options: not declared by the plugin")
        elif not fields:
            click.echo("  options: none")
        for field_name, field in fields.items():
            kind = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
            click.echo(f"  {field_name}: {kind} = {field.default!r}")


@cli.command("plugins")
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


@cli.command()
@click.option("--output", "-o", default="out/demo.jsonl", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "-m", default="stats", show_default=True, help="Base captioner spec.")
@click.option("--post", "-p", default=None, help="Post-processor spec (default: a tiny random-weight ACM).")
@click.option("--instruction", "-i", default="Describe the content in at most two sentences.", show_default=True)
def demo(output: Path, model: str, post: str | None, instruction: str) -> None:
    """Run the whole chain offline on sample media: an image, a video with sound, an audio clip."""
    from .batch import WorkItem, run
    from .cache import cache_dir
    from .samples import sample_media
    from .tiny_models import build_tiny_acm

    smoke = post is None
    if smoke:  # built once, then reused
        folder = cache_dir() / "models" / "tiny-acm-v2"  # v2: the published prompt and tiling
        if not (folder / "config.json").exists():
            click.echo(f"building a tiny random-weight ACM in {folder} ...", err=True)
            build_tiny_acm(folder, init_std=0.5)  # a wide init, so the noise is visible text
        post = f"acm:{folder}"
    captioner = _build(model, post)
    media = sample_media(output.parent / "samples")
    items = [WorkItem(str(p), instruction) for p in media.values()]
    rows: list[dict[str, Any]] = []
    output.unlink(missing_ok=True)
    summary = run(captioner, items, output, on_record=rows.append, progress=False)
    click.echo(f"AnyCap demo: {captioner.id}  (offline sample media; instruction: {instruction!r})")
    if smoke:
        click.echo("NOTE: the post-processor is a tiny RANDOM-WEIGHT ACM: its captions are smoke-test noise, "
                   "not model output. Pass --post acm:/path/to/real/acm for real captions.")
    for row in rows:
        click.echo(f"\n[{row.get('modality') or '?'}] {row['input']}")
        if row["error"]:
            click.echo(f"  error:   {row['error']['type']}: {row['error']['message']}")
        else:
            click.echo(f"  base:    {row.get('base_caption')}")
            click.echo(f"  refined: {row['caption']!r}  (complies: {row.get('meta', {}).get('complies')})")
    click.echo(f"\nwrote {output}")
    sys.exit(0 if summary.ok else 1)


@cli.command()
@click.argument("src")
@click.argument("dst", type=click.Path(file_okay=False, path_type=Path))
def convert(src: str, dst: Path) -> None:
    """Convert an InternVL-chat checkpoint (folder or hub id) into a folder acm: and internvl: load.

    Specs convert on their own (once, into the cache); this writes the result where you want it.
    """
    from .convert import ConversionError, TokenizerConversionError
    from .convert import convert as run_conversion

    try:
        report = run_conversion(src, dst)
    except (ConversionError, TokenizerConversionError) as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"{dst}: {report.tensors} tensors; language model {report.llm}; template {report.template}")
    click.echo(f"audio: {report.audio}")
    if report.dropped:
        click.echo(f"NOT CONVERTED: {len(report.dropped)} audio weights (listed in {dst / 'conversion.json'})", err=True)


def _renamed(old: str, new: str, old_value: Any, new_value: Any) -> Any:
    """An option's value given under its old name: used, with a warning that names the new one."""
    if old_value in (None, ()):
        return new_value
    if new_value not in (None, ()):
        raise click.UsageError(f"{old} is the old name of {new}: give one of them.")
    click.echo(f"warning: {old} is now {new} (the old name still works, for now).", err=True)
    return old_value


@cli.command()
@click.option("--acm", help="ACM folder to start from (e.g. one built by the converter).")
@click.option("--acd", "acd", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="ACD JSONL file (repeatable).")
@click.option("--model", "-m", "old_model", hidden=True)  # before 0.2: --model, which elsewhere is a captioner spec
@click.option("--data", "-d", "old_data", multiple=True, hidden=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False))
@click.option("--ratio", default="2:2:1", show_default=True, help="degraded:weaker:correct sample mix.")
@click.option("--max-steps", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1))
@click.option("--learning-rate", default=2e-5, show_default=True, type=float)
@click.option("--max-length", default=2048, show_default=True, type=click.IntRange(64))
@click.option("--media-root", type=click.Path(exists=True, file_okay=False))
@click.option("--missing-media", type=click.Choice(["error", "skip", "text"]), default="error", show_default=True)
@click.option("--on-bad-line", type=click.Choice(["skip", "raise"]), default="skip", show_default=True)
@click.option("--eval-steps", default=200, show_default=True, type=click.IntRange(1))
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in OUTPUT.")
def train(acm: str | None, acd: tuple[str, ...], old_model: str | None, old_data: tuple[str, ...], output: str,
          ratio: str, max_steps: int, batch_size: int, learning_rate: float, max_length: int, media_root: str | None,
          missing_media: str, on_bad_line: str, eval_steps: int, resume: bool) -> None:
    """Residual-correction SFT of ACM on ACD-format data (HF Trainer: torchrun/accelerate for multi-GPU)."""
    from .train import TrainConfig
    from .train import train as run_training

    model = _renamed("--model", "--acm", old_model, acm)
    data = _renamed("--data", "--acd", old_data, acd)
    if not model or not data:
        raise click.UsageError("Give the ACM to start from (--acm FOLDER) and its data (--acd FILE.jsonl, repeatable).")

    try:
        result = run_training(TrainConfig(
            model=model, data=list(data), output_dir=output, ratio=ratio, max_steps=max_steps, batch_size=batch_size,
            learning_rate=learning_rate, max_length=max_length, media_root=media_root,
            missing_media=missing_media, on_error=on_bad_line, eval_steps=eval_steps, save_steps=eval_steps,
            resume=resume))  # type: ignore[arg-type]
    except AnyCapError as e:
        raise click.UsageError(str(e)) from None
    click.echo(json.dumps(result, indent=2))


@cli.command()
@click.argument("spec")
@click.option("--backend", type=click.Choice(["transformers", "lmdeploy"]), default="transformers", show_default=True,
              help="Model runtime: transformers (CPU or GPU, any spec) or lmdeploy (GPU, acm:PATH only).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address; 0.0.0.0 exposes the server.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--api-key", envvar="ANYCAP_API_KEY", help="Require this bearer key on every request [env ANYCAP_API_KEY].")
@click.option("--model-name", help="The name clients put in `model` (default: acm, or the chain's base name).")
@click.option("--batch-size", type=click.IntRange(1),
              help="Requests per model call (transformers, default 8), or sequences decoded together (lmdeploy, "
                   "default 64); 1 turns batching off.")
@click.option("--batch-window-ms", default=10.0, show_default=True, type=click.FloatRange(0),
              help="How long the first request of a batch waits for others.")
@click.option("--max-body-mb", default=64.0, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--max-media-mb", default=32.0, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--allow-remote-media", is_flag=True,
              help="Fetch http(s) media URLs, from public addresses only (off: no server-side requests).")
@click.option("--allowed-media-hosts", "allowed_media_hosts", multiple=True,
              help="With --allow-remote-media: only these hosts and their subdomains (repeatable).")
@click.option("--media-root", "media_roots", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Folder whose files requests may name by path (repeatable).")
@click.option("--no-auth", is_flag=True, help="Serve beyond loopback without an API key, on purpose.")
@click.option("--trust-remote-code", is_flag=True,
              help="lmdeploy: serve a published InternVL-chat checkpoint with its own Python files (fetched from "
                   "the hub) and LMDeploy's InternVL support, instead of the converted folder.")
@click.option("--print-config", is_flag=True, help="lmdeploy: print what LMDeploy would receive, as JSON; start nothing.")
def serve(spec: str, backend: str, host: str, port: int, api_key: str | None, model_name: str | None,
          batch_size: int | None, batch_window_ms: float, max_body_mb: float, max_media_mb: float,
          allow_remote_media: bool, allowed_media_hosts: tuple[str, ...], media_roots: tuple[str, ...],
          no_auth: bool, trust_remote_code: bool, print_config: bool) -> None:
    """Serve SPEC (acm:PATH, or a chain like qwen2.5-vl:PATH+acm:PATH) as an OpenAI-compatible API.

    Binding anything but loopback needs --api-key, or --no-auth to serve openly on purpose.
    """
    from .access import OpenServerError, auth_rule
    from .serve.app import ServeConfig  # the web stack loads only when it starts

    if allowed_media_hosts and not allow_remote_media:
        raise click.UsageError("--allowed-media-hosts narrows --allow-remote-media: pass both.")
    try:
        rule = auth_rule(host, api_key, no_auth)
    except OpenServerError as e:
        raise click.UsageError(str(e)) from None
    config = ServeConfig(spec=spec, model_name=model_name, api_key=api_key, max_batch=batch_size or 8,
                         batch_window=batch_window_ms / 1000, max_body_bytes=int(max_body_mb * 2**20),
                         max_media_bytes=int(max_media_mb * 2**20), allow_remote_media=allow_remote_media,
                         allowed_media_hosts=list(allowed_media_hosts), media_roots=list(media_roots))
    if (trust_remote_code or print_config) and backend != "lmdeploy":
        raise click.UsageError("--trust-remote-code and --print-config go with --backend lmdeploy.")
    if backend == "lmdeploy":
        from .serve.lmdeploy import launcher

        options = dict(host=host, port=port, api_key=api_key, model_name=model_name, max_batch_size=batch_size or 64,
                       max_body_bytes=config.max_body_bytes, media_policy=config.media_policy,
                       trust_remote_code=trust_remote_code)
        try:
            if print_config:
                click.echo(json.dumps(launcher.launch_config(spec, **options), indent=2))
                return
            click.echo(rule, err=True)
            launcher.serve(spec, **options)
        except AnyCapError as e:
            raise click.UsageError(str(e)) from None
        return
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401

        from .serve import serve as run_server
    except ImportError as e:
        raise click.UsageError(f"Serving needs the serve extra ({e.name} is missing): "
                               "pip install 'anycap-plugin[serve]'.") from None
    try:
        run_server(config, host=host, port=port, no_auth=no_auth)
    except (UnknownCaptionerError, OptionsError) as e:
        raise click.UsageError(str(e)) from None


@cli.command("vlmeval")
@click.option("--model", "-m", "spec", required=True, help="Captioner spec, e.g. qwen2.5-vl:PATH+acm:PATH.")
@click.option("--model-name", default="AnyCap", show_default=True, help="The model's name in VLMEvalKit's outputs.")
@click.option("--data", "-d", "data", multiple=True, required=True,
              help="VLMEvalKit dataset name (repeatable): MIA-Bench, VidCapBench-AE, AnyCapEval_Image, ...")
@click.option("--judge", help="Judge model name (VLMEvalKit's; 'offline' for AnyCapEval's embedding judge).")
@click.option("--judge-base-url", help="OpenAI-compatible endpoint of the judge (key from OPENAI_API_KEY).")
@click.option("--judge-args", help="Extra judge settings as JSON, e.g. '{\"repeats\": 3}'.")
@click.option("--work-dir", default="./outputs", show_default=True, type=click.Path(file_okay=False))
@click.option("--data-root", type=click.Path(exists=True, file_okay=False),
              help="VLMEvalKit's data root (sets LMUData): MIA-Bench.tsv, AnyCapEval/, VidCapBench/.")
@click.option("--mode", type=click.Choice(["all", "infer", "eval"]), default="all", show_default=True)
@click.option("--api-nproc", default=4, show_default=True, type=click.IntRange(1),
              help="Parallel judge calls (and captioner calls with --concurrent).")
@click.option("--concurrent", is_flag=True, help="Call the captioner from --api-nproc threads (API captioners).")
@click.option("--limit", type=click.IntRange(1), help="Only the first N items of each dataset.")
@click.option("--option", "-O", "options", multiple=True, metavar="KEY=VALUE", help="Per-call captioner option.")
@click.option("--post-option", "-P", "post_options", multiple=True, metavar="KEY=VALUE",
              help="Post-processor option, e.g. max_new_tokens=128.")
def vlmeval_command(spec: str, model_name: str, data: tuple[str, ...], judge: str | None, judge_base_url: str | None,
                    judge_args: str | None, work_dir: str, data_root: str | None, mode: str, api_nproc: int,
                    limit: int | None, options: tuple[str, ...], post_options: tuple[str, ...],
                    concurrent: bool) -> None:
    """Run VLMEvalKit's inference and evaluation with an AnyCap captioner as the model."""
    from .integrations.vlmeval import VLMEvalNotInstalled
    from .integrations.vlmeval.launcher import run as run_vlmeval


    try:
        check_spec(spec)  # an unknown name is a usage error before VLMEvalKit starts
    except (UnknownCaptionerError, OptionsError) as e:
        raise click.UsageError(str(e)) from None
    try:
        statuses = run_vlmeval(spec, list(data), model_name=model_name, work_dir=work_dir, data_root=data_root,
                               judge=judge, judge_base_url=judge_base_url, judge_args=judge_args, mode=mode,
                               api_nproc=api_nproc, limit=limit, options=_parse_options(options),
                               post_options=_parse_options(post_options), concurrent=concurrent)
    except VLMEvalNotInstalled as e:
        raise click.UsageError(str(e)) from None
    failed = 0
    for name in data:
        status = statuses.get(name, {})
        problem = status.get("error_message") or status.get("skip_reason")
        failed += bool(status.get("error_message")) or status.get("skip_reason") == "invalid_dataset" or not status
        click.echo(f"{name}: {status.get('status', 'not run')}"
                   f"{' - ' + str(problem) if problem else ''}  {status.get('metrics') or ''}", err=True)
    sys.exit(1 if failed else 0)


def _add_builtin_groups() -> None:
    from .eval.cli import eval_group
    from .integrations.lmms_eval.cli import lmms_eval_tasks_command
    from .synth.cli import synth_command
    from .view.cli import view_command

    cli.add_command(eval_group)
    cli.add_command(view_command)
    cli.add_command(lmms_eval_tasks_command)
    cli.add_command(synth_command)


_add_builtin_groups()


def main(argv: list[str] | None = None) -> None:
    try:
        plugin_manager().hook.register_commands(cli=cli)
    except Exception as e:  # a plugin's command hook must not break the built-in commands
        click.echo(f"warning: a plugin failed to add its commands: {type(e).__name__}: {e}", err=True)
    try:
        cli.main(args=argv, prog_name="anycap")
    except AnyCapError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
