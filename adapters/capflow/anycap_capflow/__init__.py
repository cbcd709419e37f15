"""AnyCap plugin: CapFlow workflow captioning (route, specialist agents, summary, quality filter)
on OpenAI-compatible endpoints. See `captioner.py` for the specs and `default_workflow.yaml`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anycap_plugin import Deferred, hookimpl

_HOMES = {
    "CapFlow": "flow",
    "CapFlowCaptioner": "captioner",
    "CapFlowFilter": "captioner",
    "Workflow": "workflow",
    "WorkflowError": "workflow",
    "build_flow": "captioner",
    "load_workflow": "workflow",
}
__all__ = [
    "CapFlow",
    "CapFlowCaptioner",
    "CapFlowFilter",
    "Workflow",
    "WorkflowError",
    "build_flow",
    "load_workflow",
]


def __getattr__(name: str) -> Any:
    """The flow loads on first use: registering the plugin imports neither pydantic nor the engine."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _captioner() -> type:
    from .captioner import CapFlowCaptioner

    return CapFlowCaptioner


def _filter() -> type:
    from .captioner import CapFlowFilter

    return CapFlowFilter


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "capflow",
        Deferred(_captioner),
        needs_model=True,
        modalities=("image", "video"),
        description="CapFlow workflow: route, specialist agents, summary, filter (capflow:MODEL or capflow:workflow.yaml)",
    )


@hookimpl
def register_post_processors(register: Any) -> None:
    register(
        "capflow-filter",
        Deferred(_filter),
        modalities=("image", "video"),
        description="CapFlow's quality filter on the caption before it (capflow-filter:MODEL or :workflow.yaml)",
    )


@hookimpl
def register_commands(cli: Any) -> None:
    import click

    from anycap_plugin.command_line import concurrency_option, num_frames_option

    @cli.command("capflow-filter")
    @click.argument("captions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--model",
        "-m",
        "spec",
        required=True,
        help="A model for the default workflow, or a workflow YAML.",
    )
    @click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path))
    @click.option(
        "--media-field",
        default="input",
        show_default=True,
        help="The field holding the media path.",
    )
    @click.option("--caption-field", default="caption", show_default=True)
    @click.option(
        "--media-root",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where relative media paths start (default: as written).",
    )
    @click.option("--base-url", help="The default endpoint's URL (default: OPENAI_BASE_URL).")
    @concurrency_option(
        None, "Calls in flight on the default endpoint (default: the workflow's own setting)."
    )
    @num_frames_option(8, "Frames sampled from each video for the filter model.")
    def capflow_filter(
        captions: Path,
        spec: str,
        output: Path,
        media_field: str,
        caption_field: str,
        media_root: Path | None,
        base_url: str | None,
        concurrency: int | None,
        num_frames: int,
    ) -> None:
        """Score existing captions with CapFlow's quality filter; each record gains `filter`."""
        from .captioner import build_flow
        from .filtering import filter_file

        _, flow = build_flow(spec, base_url=base_url, concurrency=concurrency)
        try:
            summary = filter_file(
                flow,
                captions,
                output,
                media_field=media_field,
                caption_field=caption_field,
                media_root=media_root,
                num_frames=num_frames,
            )
        finally:
            usage = flow.engine.usage_report()
            flow.engine.close()
        click.echo(
            f"{summary.succeeded} judged, {summary.failed} failed, {summary.skipped} already done -> {output}"
        )
        click.echo(
            "usage: "
            + ", ".join(
                f"{r}: {u['calls']} calls, {u['cache_hits']} cached, "
                f"{u['prompt_tokens'] + u['completion_tokens']} tokens"
                for r, u in usage.items()
            )
        )
        if summary.failed:
            raise SystemExit(1)
