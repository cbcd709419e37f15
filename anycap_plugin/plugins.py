"""The plugin host: entry-point loading (lazy, once), registries, and spec resolution.

`ANYCAP_LOAD_PLUGINS` picks which installed plugins load: unset loads all, an empty value
none, otherwise a comma-separated list of entry-point or distribution names. A plugin that
fails to import, has a hook with no matching spec, or raises while registering is recorded
with its error and left out; everything else keeps working.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import os
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

import pluggy

from . import default_plugins, hookspecs
from .errors import OptionsError, PluginError, UnknownCaptionerError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "anycap"
LOAD_ENV = "ANYCAP_LOAD_PLUGINS"
Kind = Literal["captioner", "post-processor", "benchmark"]
_HOOK_FOR_KIND: dict[Kind, str] = {
    "captioner": "register_captioners",
    "post-processor": "register_post_processors",
    "benchmark": "register_benchmarks",
}


@dataclass(frozen=True)
class Registration:
    """A registered captioner or post-processor and what the host checks before building it.

    `needs_model`: True (a spec must name one: `openai:gpt-4o-mini`), False (`stats`), None (the
    factory decides, for registrations without metadata). `options`: its per-call options class,
    or a function returning it (resolved only when shown). `modalities`: what it reads (None:
    decided per model). `preflight(model, **kwargs)`: raises what building it would raise for what it
    needs first (a key, a model folder), loading nothing, so a run can be refused before its workers start."""

    name: str
    factory: Callable[..., Any]
    description: str
    plugin: str
    kind: Kind
    needs_model: bool | None = None
    options: Any = None
    modalities: frozenset[str] | None = None
    preflight: Callable[..., None] | None = None

    def options_class(self) -> type | None:
        return (
            self.options
            if self.options is None or isinstance(self.options, type)
            else self.options()
        )


def _metadata(
    factory: Any,
    needs_model: bool | None,
    options: Any,
    modalities: Any,
    preflight: Callable[..., None] | None,
) -> tuple[Any, ...]:
    """Explicit metadata, else what a captioner class declares (`needs_model`, `Options`, `modalities`,
    `preflight`)."""
    if isinstance(factory, hookspecs.Deferred):
        options = options or factory.options
        preflight = preflight or factory.preflight
    if isinstance(factory, type):
        needs_model = getattr(factory, "needs_model", None) if needs_model is None else needs_model
        options = options or getattr(factory, "Options", None)
        declared = getattr(factory, "modalities", None)
        modalities = (
            modalities
            if modalities is not None
            else (declared if isinstance(declared, frozenset) else None)
        )
        preflight = preflight or getattr(factory, "preflight", None)
    return (
        needs_model,
        options,
        frozenset(modalities) if modalities is not None else None,
        preflight,
    )


@dataclass
class PluginInfo:
    """What `anycap plugins` shows: where a plugin came from, its hooks, its error if broken."""

    name: str
    distribution: str | None
    version: str | None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


class _Host:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pm: pluggy.PluginManager | None = None
        self.plugins: dict[str, PluginInfo] = {}
        self.registry: dict[Kind, dict[str, Registration]] = {k: {} for k in _HOOK_FOR_KIND}


_host = _Host()


def _wanted(ep: metadata.EntryPoint) -> bool:
    value = os.environ.get(LOAD_ENV)
    if value is None:
        return True
    names = {n.strip() for n in value.split(",") if n.strip()}
    dist = ep.dist.name if ep.dist is not None else None
    return ep.name in names or (dist is not None and dist in names)


def _load_entry_point(pm: pluggy.PluginManager, ep: metadata.EntryPoint) -> PluginInfo:
    dist = ep.dist
    info = PluginInfo(ep.name, dist.name if dist else None, dist.version if dist else None)
    try:
        module = ep.load()
    except Exception as e:  # a broken plugin must not take the host down
        info.error = f"failed to import {ep.value!r}: {type(e).__name__}: {e}"
        return info
    try:
        pm.register(module, name=ep.name)
        pm.check_pending()
    except Exception as e:
        if pm.is_registered(module):
            pm.unregister(module)
        info.error = f"{type(e).__name__}: {e}"
        return info
    info.hooks = sorted(c.name for c in pm.get_hookcallers(module) or [])
    return info


def plugin_manager() -> pluggy.PluginManager:
    """The loaded plugin manager; the first call loads the default plugins and the entry points."""
    with _host.lock:
        if _host.pm is not None:
            return _host.pm
        pm = pluggy.PluginManager("anycap")
        pm.add_hookspecs(hookspecs)
        _host.plugins = {}
        for (
            module
        ) in default_plugins.PLUGINS:  # registered like any plugin, before the installed ones
            name = "builtins." + module.__name__.rpartition(".")[2]
            pm.register(module, name=name)
            _host.plugins[name] = PluginInfo(
                name,
                "anycap-plugin",
                _own_version(),
                sorted(c.name for c in pm.get_hookcallers(module) or []),
            )
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in _host.plugins or not _wanted(ep):
                continue
            info = _load_entry_point(pm, ep)
            _host.plugins[ep.name] = info
            if info.error:
                log.warning("anycap plugin %r not loaded: %s", ep.name, info.error)
        for kind, hook in _HOOK_FOR_KIND.items():
            _collect(pm, kind, hook)
        _host.pm = pm
        return pm


def _collect(pm: pluggy.PluginManager, kind: Kind, hook_name: str) -> None:
    """Call each plugin's hook on its own, so one plugin raising leaves the others registered."""
    registry = _host.registry[kind]
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        plugin = impl.plugin_name.removeprefix("anycap_plugin.")

        def register(
            name: Any,
            factory: Callable[..., Any] | None = None,
            description: str = "",
            *,
            needs_model: bool | None = None,
            options: type | None = None,
            modalities: Any = None,
            preflight: Callable[..., None] | None = None,
            _p: str = plugin,
        ) -> None:
            if kind == "benchmark" and not isinstance(name, str):  # a Benchmark (eval.registry)
                name, factory, description = name.name, name, name.description
            if factory is None:
                raise TypeError(f"register({name!r}) needs a factory")
            if name in registry and registry[name].plugin != _p:
                log.warning(
                    "%s %r from %s replaces the one from %s", kind, name, _p, registry[name].plugin
                )
            registry[name] = Registration(
                name,
                factory,
                description,
                _p,
                kind,
                *_metadata(factory, needs_model, options, modalities, preflight),
            )

        try:
            impl.function(register=register)
        except Exception as e:
            info = _host.plugins.get(plugin)
            if info is not None:
                info.error = f"{hook_name} raised {type(e).__name__}: {e}"
            log.warning(
                "anycap plugin %r failed in %s: %s",
                plugin,
                hook_name,
                traceback.format_exc(limit=3),
            )


def _own_version() -> str | None:
    try:
        return metadata.version("anycap-plugin")
    except metadata.PackageNotFoundError:
        return None


def reset() -> None:
    """Forget loaded plugins, so the next call loads again (tests change the environment)."""
    with _host.lock:
        _host.pm = None
        _host.plugins = {}
        _host.registry = {k: {} for k in _HOOK_FOR_KIND}


def plugins() -> list[PluginInfo]:
    plugin_manager()
    return list(_host.plugins.values())


def registrations(kind: Kind) -> dict[str, Registration]:
    plugin_manager()
    return dict(_host.registry[kind])


def _matching(kind: Kind, pattern: str) -> list[str]:
    return sorted(n for n in registrations(kind) if fnmatch.fnmatch(n, pattern))


def list_captioners(pattern: str = "*") -> list[str]:
    """Registered captioner names matching a wildcard pattern (`*vl*`)."""
    return _matching("captioner", pattern)


def list_post_processors(pattern: str = "*") -> list[str]:
    return _matching("post-processor", pattern)


def _registration(kind: Kind, name: str) -> Registration:
    known = registrations(kind)
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        raise UnknownCaptionerError(name, kind, close, sorted(known))
    return known[name]


def parse_spec(spec: str) -> tuple[str, str]:
    """`name:model` -> (name, model); a chain's base part is `split_chain`'s."""
    name, _, model = spec.strip().partition(":")
    return name, model


def join_spec(base: str, post: str | None) -> str:
    """The chain spec of a base spec and an optional post-processor spec: `base+post`."""
    return f"{base}+{post}" if post else base


def spec_name(spec: str) -> str:
    """The registered name a spec (or a chain's base) starts with: `acm` for `acm:/m`, `qwen2.5-vl` for
    `qwen2.5-vl:/q+acm:/m`."""
    return parse_spec(split_chain(spec)[0])[0]


def _checked(kind: Kind, spec: str) -> tuple[Registration, str]:
    """The registration a spec names, and its model part, checked against what it takes."""
    name, model = parse_spec(spec)
    registration = _registration(kind, name)
    if registration.needs_model and not model:
        raise OptionsError(
            f"The {kind} {name!r} needs a model: use a spec like '{name}:MODEL'.",
            hint=f"{registration.description}. `anycap models --options {name}` lists its options.",
        )
    if registration.needs_model is False and model:
        raise OptionsError(
            f"The {kind} {name!r} takes no model; got {model!r}.",
            hint=f"Use the spec {name!r} alone.",
        )
    return registration, model


def _resolve(kind: Kind, spec: str, kwargs: dict[str, Any]) -> Any:
    registration, model = _checked(kind, spec)
    try:
        if registration.needs_model is False:
            return registration.factory(**kwargs)
        return registration.factory(model or None, **kwargs)
    except TypeError as e:
        raise OptionsError(
            f"Cannot build {kind} {spec!r}: {e}.",
            hint="Check the keyword options against the plugin's documentation.",
        ) from None


def split_chain(spec: str) -> tuple[str, str | None]:
    """`base+post` at the last `+` that starts a registered post-processor name."""
    posts = registrations("post-processor")
    for i in range(len(spec) - 1, 0, -1):
        if spec[i] == "+":
            name = spec[i + 1 :].partition(":")[0]
            if name in posts:
                return spec[:i], spec[i + 1 :]
    return spec, None


def get_base_captioner(spec: str, **kwargs: Any) -> Any:
    """The one registered captioner `spec` names (`name` or `name:model`), built with `kwargs`.
    Chains (`base+post`) are built by `wrapping.Chain`, the one place that joins two stages."""
    return _resolve("captioner", spec, kwargs)


def check_spec(
    spec: str,
    options: dict[str, Any] | None = None,
    *,
    post: str | None = None,
    post_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Check a spec without building it (nothing is loaded): its names (`UnknownCaptionerError`),
    its model parts, the base captioner's per-call `options`, and what each part needs first
    (`preflight`: a key, a model folder), raising what building it would raise. `post`: the
    post-processor's spec given apart (else it is read off a `base+post` chain; "": none), and
    `post_options` its per-call options. `kwargs` are the base captioner's constructor options."""
    from .captioner import validate_options

    base_spec, post_spec = (spec, post or None) if post is not None else split_chain(spec)
    parts: tuple[tuple[Kind, str | None, dict[str, Any], dict[str, Any] | None], ...] = (
        ("captioner", base_spec, kwargs, options),
        ("post-processor", post_spec, {}, post_options),
    )
    for kind, part, kw, per_call in parts:
        if part is None:
            continue
        registration, model = _checked(kind, part)
        if registration.preflight is not None:
            registration.preflight(model or None, **kw)
        options_class = registration.options_class() if per_call else None
        if options_class is not None:
            validate_options(options_class, part, per_call or {})


def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """The captioner an installed adapter makes of a framework object (see `hookspecs.adapt_captioner`)."""
    pm = plugin_manager()
    captioner = pm.hook.adapt_captioner(obj=obj, options=dict(options))
    if captioner is None:
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        adapters = sorted(
            {pm.get_name(impl.plugin) or "?" for impl in pm.hook.adapt_captioner.get_hookimpls()}
        )
        raise OptionsError(
            f"No installed adapter takes a {kind} object.",
            hint="Adapters installed: " + (", ".join(adapters) or "none") + ". Install the adapter "
            "for its framework, pass a spec string ('openai:gpt-4o-mini'), or a BaseCaptioner.",
        )
    return captioner


def get_post_processor(spec: str, **kwargs: Any) -> Any:
    return _resolve("post-processor", spec, kwargs)


def benchmarks() -> dict[str, Any]:
    """Every registered `eval.registry.Benchmark` by name (the built-ins, then what plugins
    register), in name order: what `anycap eval`, the VLMEvalKit datasets and the lmms-eval tasks
    are built from. (`anycap bench` also runs the plain `run(captioner)` kind.)"""
    from .eval.registry import Benchmark

    found: dict[str, Benchmark] = {}
    for registration in registrations("benchmark").values():
        if isinstance(registration.factory, Benchmark):
            found[registration.factory.name] = registration.factory
    return dict(sorted(found.items()))


def get_benchmark(name: str) -> Registration:
    known = registrations("benchmark")
    if name not in known:
        raise UnknownCaptionerError(
            name, "benchmark", difflib.get_close_matches(name, list(known)), sorted(known)
        )
    return known[name]


def require_plugins_ok() -> None:
    """Raise when any plugin failed: for strict hosts (CI) that must not run half-loaded."""
    broken = [p for p in plugins() if p.error]
    if broken:
        raise PluginError("; ".join(f"{p.name}: {p.error}" for p in broken))
