"""CapFlow as AnyCap plugins: the `capflow` captioner and the `capflow-filter` post-processor.

Specs: `capflow:MODEL` runs the default workflow with every role on MODEL (endpoint from
OPENAI_BASE_URL / OPENAI_API_KEY); `capflow:path/to/workflow.yaml` runs that workflow (roles name
their own endpoints and models). Both compose: `capflow:gpt-4.1-mini+acm:/models/acm`,
`openai:gpt-4o+capflow-filter:gpt-4.1`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anycap_plugin import BaseCaptioner, Caption, CaptionOptions, Media, OptionsError
from anycap_plugin.cache import cache_dir
from anycap_plugin.call_engine import CallEngine
from anycap_plugin.captioner import PostProcessor

from .flow import CapFlow
from .workflow import Workflow, load_workflow


class CapFlowOptions(CaptionOptions):
    domain: str | None = None  # skip routing: every item is of this domain
    num_frames: int = 8
    filter: bool | None = None  # None: as the workflow says


class FilterOptions(CaptionOptions):
    num_frames: int = 8


def build_flow(
    spec: str | None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    concurrency: int | None = None,
    cache: str | Path | bool | None = None,
) -> tuple[Workflow, CapFlow]:
    """The workflow and its engine from a spec part (`MODEL` or `workflow.yaml`) and endpoint overrides.

    `cache`: a SQLite path for the call cache; None uses `~/.cache/anycap/capflow_calls.sqlite`
    (`ANYCAP_CACHE`), False turns it off."""
    if not spec:
        raise OptionsError(
            "capflow needs a model or a workflow file.",
            hint="Use 'capflow:gpt-4.1-mini' (default workflow) or 'capflow:my_workflow.yaml'.",
        )
    is_file = spec.endswith((".yaml", ".yml")) or Path(spec).is_file()
    workflow = load_workflow(
        spec if is_file else None,
        model=None if is_file else spec,
        base_url=base_url,
        api_key_env=api_key_env,
        concurrency=concurrency,
    )
    cache_path = (
        None
        if cache is False
        else (cache_dir() / "capflow_calls.sqlite" if cache in (None, True) else cache)
    )
    engine = CallEngine(
        workflow.endpoints,
        workflow.roles,
        cache=cache_path,
        api_keys={"default": api_key} if api_key else None,
    )
    return workflow, CapFlow(workflow, engine)


class CapFlowCaptioner(BaseCaptioner[CapFlowOptions]):
    """Route, specialist agents in parallel, summary, quality filter; the record goes to `Caption.meta["capflow"]`."""

    modalities = frozenset({"image", "video"})

    def __init__(self, model: str | None = None, **endpoint: Any) -> None:
        self.workflow, self.flow = build_flow(model, **endpoint)
        self.id = f"capflow:{model}"

    def __repr__(self) -> str:  # never show a key
        return f"CapFlowCaptioner({self.id!r})"

    def _caption_batch(
        self, media: list[Media], instructions: list[str | None], options: CapFlowOptions
    ) -> list[Caption]:
        import asyncio

        async def all_items() -> list[dict[str, Any]]:
            return list(
                await asyncio.gather(
                    *(
                        self.flow.caption(
                            m,
                            i,
                            domain=options.domain,
                            num_frames=options.num_frames,
                            run_filter=options.filter,
                        )
                        for m, i in zip(media, instructions)
                    )
                )
            )

        return [_to_caption(self.workflow.name, r) for r in self.flow.engine.run(all_items())]


class CapFlowFilter(PostProcessor[FilterOptions]):
    """The quality filter alone: scores the caption it is given, keeps its text, and says in
    `meta["capflow_filter"]` whether every dimension got the top mark."""

    modalities = frozenset({"image", "video"})

    def __init__(self, model: str | None = None, **endpoint: Any) -> None:
        self.workflow, self.flow = build_flow(model, **endpoint)
        self.id = f"capflow-filter:{model}"

    def _refine_batch(
        self,
        media: list[Media],
        instructions: list[str | None],
        captions: list[Caption],
        options: FilterOptions,
    ) -> list[Caption]:
        import asyncio

        async def all_items() -> list[dict[str, Any]]:
            return list(
                await asyncio.gather(
                    *(
                        self.flow.judge(m, c.text, num_frames=options.num_frames)
                        for m, c in zip(media, captions)
                    )
                )
            )

        refined = []
        for caption, verdict in zip(captions, self.flow.engine.run(all_items())):
            usage = verdict.pop("usage")
            refined.append(
                Caption(
                    text=caption.text, usage=_flat_usage(usage), meta={"capflow_filter": verdict}
                )
            )
        return refined


def _flat_usage(by_role: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The stage's token counts, with the per-role breakdown kept under `by_role`."""
    return {
        "prompt_tokens": sum(u["prompt_tokens"] for u in by_role.values()),
        "completion_tokens": sum(u["completion_tokens"] for u in by_role.values()),
        "cost_usd": round(sum(u["cost_usd"] for u in by_role.values()), 6),
        "by_role": by_role,
    }


def _to_caption(workflow: str, record: dict[str, Any]) -> Caption:
    usage = record.pop("usage")
    text = record.pop("caption")
    return Caption(
        text=text, usage=_flat_usage(usage), meta={"capflow": {"workflow": workflow, **record}}
    )
