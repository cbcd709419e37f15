"""`anycap serve`: a captioner or chain as an OpenAI-compatible API (transformers or LMDeploy)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypedDict

import click

from ..command_line import parse_options, renamed_argument
from .common import build_chain, chain_options
from .exit_codes import AnyCapCommand

if TYPE_CHECKING:
    from ..serve.policy import MediaPolicy

    class _LaunchOptions(TypedDict):
        """The keyword arguments `anycap serve --backend lmdeploy` gives the LMDeploy launcher."""

        host: str
        port: int
        api_key: str | None
        model_name: str | None
        max_batch_size: int
        max_body_bytes: int
        media_policy: MediaPolicy
        trust_remote_code: bool
        allowed_hosts: list[str]


@click.command("serve", cls=AnyCapCommand)
# before 0.2: the chain as one positional SPEC
@renamed_argument("spec", new="-m/--model", target="model")
@chain_options(
    "Base captioner spec (BASE+POST also works); without one, --post is served alone and refines "
    "the base caption each request carries.",
    post_help="Post-processor spec, e.g. acm:/models/acm.",
)
@click.option(
    "--backend",
    type=click.Choice(["transformers", "lmdeploy"]),
    default="transformers",
    show_default=True,
    help="Model runtime: transformers (CPU or GPU, any spec) or lmdeploy (GPU, acm:PATH only).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Bind address; 0.0.0.0 exposes the server.",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--api-key",
    envvar="ANYCAP_API_KEY",
    help="Require this bearer key on every request [env ANYCAP_API_KEY].",
)
@click.option(
    "--model-name", help="The name clients put in `model` (default: acm, or the chain's base name)."
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    help="Requests per model call (transformers, default 8), or sequences decoded together (lmdeploy, "
    "default 64); 1 turns batching off.",
)
@click.option(
    "--batch-window-ms",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0),
    help="How long the first request of a batch waits for others.",
)
@click.option(
    "--max-body-mb", default=64.0, show_default=True, type=click.FloatRange(0, min_open=True)
)
@click.option(
    "--max-media-mb", default=32.0, show_default=True, type=click.FloatRange(0, min_open=True)
)
@click.option(
    "--allow-remote-media",
    is_flag=True,
    help="Fetch http(s) media URLs, from public addresses only (off: no server-side requests).",
)
@click.option(
    "--allowed-media-hosts",
    "allowed_media_hosts",
    multiple=True,
    help="With --allow-remote-media: only these hosts and their subdomains (repeatable).",
)
@click.option(
    "--media-root",
    "media_roots",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder whose files requests may name by path (repeatable).",
)
@click.option(
    "--allow-host",
    "allowed_hosts",
    multiple=True,
    help="A name clients may reach the server by besides its address and loopback names (repeatable); "
    "other Host headers get 421.",
)
@click.option(
    "--no-auth", is_flag=True, help="Serve beyond loopback without an API key, on purpose."
)
@click.option(
    "--trust-remote-code",
    is_flag=True,
    help="lmdeploy: serve a published InternVL-chat checkpoint with its own Python files (fetched from "
    "the hub) and LMDeploy's InternVL support, instead of the converted folder.",
)
@click.option(
    "--print-config",
    is_flag=True,
    help="lmdeploy: print what LMDeploy would receive, as JSON; start nothing.",
)
def serve(
    model: str | None,
    post: str | None,
    options: tuple[str, ...],
    post_options: tuple[str, ...],
    num_frames: int | None,
    backend: str,
    host: str,
    port: int,
    api_key: str | None,
    model_name: str | None,
    batch_size: int | None,
    batch_window_ms: float,
    max_body_mb: float,
    max_media_mb: float,
    allow_remote_media: bool,
    allowed_media_hosts: tuple[str, ...],
    media_roots: tuple[str, ...],
    allowed_hosts: tuple[str, ...],
    no_auth: bool,
    trust_remote_code: bool,
    print_config: bool,
) -> None:
    """Serve a chain (-m BASE_SPEC -p POST_SPEC) or a post-processor alone (-p acm:PATH) as an
    OpenAI-compatible API.

    Binding anything but loopback needs --api-key, or --no-auth to serve openly on purpose.
    """
    from ..access import auth_rule
    from ..serve.app import ServeConfig  # the web stack loads only when it starts

    served, base, post_per_call = _served(model, post, options, post_options, num_frames)
    if backend == "lmdeploy" and (base or post_per_call):
        raise click.UsageError("-O, -P and --num-frames go with --backend transformers.")
    if allowed_media_hosts and not allow_remote_media:
        raise click.UsageError("--allowed-media-hosts narrows --allow-remote-media: pass both.")
    rule = auth_rule(host, api_key, no_auth)
    config = ServeConfig(
        spec=served,
        options=base,
        post_options=post_per_call,
        model_name=model_name,
        api_key=api_key,
        max_batch=batch_size or 8,
        batch_window=batch_window_ms / 1000,
        max_body_bytes=int(max_body_mb * 2**20),
        max_media_bytes=int(max_media_mb * 2**20),
        allow_remote_media=allow_remote_media,
        allowed_media_hosts=list(allowed_media_hosts),
        media_roots=list(media_roots),
        host=host,
        allowed_hosts=list(allowed_hosts),
    )
    if (trust_remote_code or print_config) and backend != "lmdeploy":
        raise click.UsageError("--trust-remote-code and --print-config go with --backend lmdeploy.")
    if backend == "lmdeploy":
        from ..serve.lmdeploy import launcher

        launch: _LaunchOptions = {
            "host": host,
            "port": port,
            "api_key": api_key,
            "model_name": model_name,
            "max_batch_size": batch_size or 64,
            "max_body_bytes": config.max_body_bytes,
            "media_policy": config.media_policy,
            "trust_remote_code": trust_remote_code,
            "allowed_hosts": list(allowed_hosts),
        }
        if print_config:
            click.echo(json.dumps(launcher.launch_config(served, **launch), indent=2))
            return
        click.echo(rule, err=True)
        launcher.serve(served, **launch)
        return
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401

        from ..serve import serve as run_server
    except ImportError as e:
        raise click.UsageError(
            f"Serving needs the serve extra ({e.name} is missing): "
            "pip install 'anycap-plugin[serve]'."
        ) from None
    run_server(config, host=host, port=port, no_auth=no_auth)


def _served(
    model: str | None,
    post: str | None,
    options: tuple[str, ...],
    post_options: tuple[str, ...],
    num_frames: int | None,
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """What the server serves, checked before anything loads: the spec, the base captioner's
    per-call options (a request's own settings win over them), and the post-processor's."""
    from ..captioner import validate_options
    from ..errors import OptionsError
    from ..plugins import registrations, spec_name

    if model is None and post is None:
        raise click.UsageError("Name what to serve: -m BASE_SPEC [-p POST_SPEC], or -p acm:PATH.")
    alone = post if model is None else model if post is None else None
    if alone is not None and spec_name(alone) in registrations("post-processor"):
        if options or num_frames is not None:
            raise click.UsageError(
                f"{alone} is served alone, with no base captioner: -O and --num-frames set a base "
                "captioner's options (the post-processor's are -P)."
            )
        per_call = parse_options(post_options, "--post-option")
        takes = registrations("post-processor")[spec_name(alone)].options_class()
        if per_call and takes is None:
            raise OptionsError(f"{alone} takes no per-call options.", hint="Drop -P.")
        if takes is not None:
            validate_options(takes, alone, per_call)
        return alone, {}, per_call
    if model is None:
        raise click.UsageError(f"{post} is not a post-processor: name it with -m/--model.")
    chain = build_chain(model, post, options, post_options, num_frames)
    return chain.spec, chain.options, chain.post_options
