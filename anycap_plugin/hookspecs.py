"""The plugin contract: five hooks. Each receives a callback (or the CLI group) and calls it.

A plugin is a module with functions marked `@anycap_plugin.hookimpl`, named in the
`anycap` entry-point group of its distribution:

    [project.entry-points.anycap]
    myplugin = "anycap_myplugin"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("anycap")
hookimpl = pluggy.HookimplMarker("anycap")

Register = Callable[..., None]


@dataclass(frozen=True)
class Deferred:
    """A captioner or post-processor class registered without importing it.

    `load()` imports and returns the class when it is first built, its options are shown, or its
    preflight runs; registering costs no import, so `anycap --help` stays light with every plugin
    installed. Give `register` what the class would declare (`needs_model`, `modalities`):
    `register("mine", Deferred(load_mine), needs_model=True, modalities=("image",))`.
    """

    load: Callable[[], Any]  # returns the class

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)

    def options(self) -> type:
        return self.load().Options

    def preflight(self, model: str | None, **kwargs: Any) -> None:
        check = getattr(self.load(), "preflight", None)
        if check is not None:
            check(model, **kwargs)


@hookspec
def register_captioners(register: Register) -> None:
    """Register base captioners: `register(name, factory, description="", *, needs_model=None,
    options=None, modalities=None, preflight=None)`.

    `factory(model, **kwargs)` returns a `BaseCaptioner` (a captioner class itself works);
    `model` is the part of the spec after the colon (`openai:gpt-4o-mini` gives
    `"gpt-4o-mini"`). The host checks the spec against `needs_model` before building: a missing
    or unexpected model is one `OptionsError`; `needs_model=False` factories are called without
    it. `options` (the per-call options class) and `modalities` default to the class's `Options`
    and `modalities`, and `anycap models --options NAME` shows them. A `Deferred` factory imports
    its class only when needed (its options and preflight come from that class). `preflight(model, **kwargs)`
    (default: the class's `preflight` classmethod) raises what building would raise for what the
    captioner needs first (a key, a model folder) without loading anything: `--engine ray` calls it
    on the driver before any worker starts.
    """


@hookspec
def register_post_processors(register: Register) -> None:
    """Register post-processors: `register(name, factory, description="")`.

    `factory(model, **kwargs)` returns a `PostProcessor`; specs work as for captioners and
    chain after a captioner with `+` (`qwen2.5-vl:PATH+acm:PATH`).
    """


@hookspec(firstresult=True)
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """Claim a framework object for `wrap(obj, **options)`: return a `BaseCaptioner`, or None.

    An adapter distribution claims the objects of its own framework (a loaded transformers
    model, an `openai.OpenAI` client, a VLMEvalKit model, ...); the first non-None result wins.
    It raises `OptionsError` when the object is its own but the options are wrong.
    """


@hookspec
def register_benchmarks(register: Register) -> None:
    """Register benchmarks: `register(benchmark)` or `register(name, run, description="")`.

    A `benchmark` (`anycap_plugin.eval.registry.Benchmark`) scores captions from files: it becomes
    `anycap eval NAME`, VLMEvalKit datasets and lmms-eval tasks. `run(captioner, **kwargs)`
    evaluates a captioner and returns a JSON-serialisable dict (`anycap bench NAME -m SPEC`).
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add subcommands to the `anycap` command: `cli` is its `click.Group`."""
