"""`anycap view RUN [RUN_B]`: the viewer's command."""

from __future__ import annotations

from pathlib import Path

import click

from .exit_codes import AnyCapCommand


@click.command("view", cls=AnyCapCommand)
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--media-root",
    "media_roots",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder media may be served from, besides the run's own (repeatable).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Bind address; anything but loopback needs a token.",
)
@click.option(
    "--allow-host",
    "allowed_hosts",
    multiple=True,
    help="A name the page may be opened by besides its address and loopback names (repeatable); "
    "other Host headers get 421.",
)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token", envvar="ANYCAP_VIEW_TOKEN", help="Require this token [env ANYCAP_VIEW_TOKEN]."
)
@click.option(
    "--export",
    "export",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one self-contained HTML file instead of serving.",
)
@click.option(
    "--limit", default=1000, show_default=True, type=click.IntRange(1), help="Items in an export."
)
def view_command(
    runs: tuple[Path, ...],
    media_roots: tuple[Path, ...],
    host: str,
    allowed_hosts: tuple[str, ...],
    port: int,
    token: str | None,
    export: Path | None,
    limit: int,
) -> None:
    """Look at a caption run (JSONL or Parquet), two runs side by side, or an evaluation folder, in the browser."""
    from ..access import is_loopback

    if len(runs) > 2:
        raise click.UsageError("Give one run, or two to compare.")
    if export is not None:
        from ..view.export import export_page

        if len(runs) != 1 or runs[0].is_dir():
            raise click.UsageError("--export writes one caption run (a JSONL or Parquet file).")
        done = export_page(runs[0], export, limit=limit, media_roots=list(media_roots))
        click.echo(
            f"wrote {export}: {done['items']} of {done['of']} items, {done['pictures']} pictures",
            err=True,
        )
        return
    if not is_loopback(host) and not token:
        raise click.UsageError(
            f"Refusing to serve on {host} without a token: anyone who can reach the port could "
            "read the captions and media. Pass --token (or set ANYCAP_VIEW_TOKEN)."
        )
    import sys

    import uvicorn

    from ..view.app import create_app, open_runs

    # the index thread parses while pages are served: hand the interpreter over every 0.5 ms rather than
    # 5 ms, or each step of a page request (a socket write, a line read) waits on it (this process only views)
    sys.setswitchinterval(0.0005)

    viewed = open_runs(list(runs), list(media_roots), start=False)
    config = uvicorn.Config(
        create_app(viewed, token, host=host, allowed_hosts=list(allowed_hosts)),
        host=host,
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        import asyncio

        while not server.started:
            await asyncio.sleep(0.05)
        for index in (
            viewed.runs.values()
        ):  # indexing starts once the server listens: it does not slow the start
            index.start()
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        click.echo(
            f"AnyCap view: http://{host}:{bound}/" + (f"?token={token}" if token else ""), err=False
        )

    import asyncio

    async def main() -> None:
        await asyncio.gather(server.serve(), announce())

    asyncio.run(main())
