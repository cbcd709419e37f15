"""The one mapping from errors to exit statuses, and the click classes that apply it.

0: everything done. 1: the command ran and something failed (some items, a call, a judge, a
cluster: a `RunError`, or failures a command counts). 2: the command cannot run as given (a spec,
an option, an input, a file, a missing install: every other `AnyCapError`), said before any work.
Commands raise the library's errors as they are; nothing converts them by hand.
"""

from __future__ import annotations

from typing import Any, NoReturn

import click

from ..errors import AnyCapError, RunError

OK, FAILED, USAGE = 0, 1, 2


def exit_code(error: AnyCapError) -> int:
    return FAILED if isinstance(error, RunError) else USAGE


def click_error(error: AnyCapError, ctx: click.Context | None = None) -> click.ClickException:
    """What click prints and exits with for this error: a usage error (with the command's usage
    line) for exit 2, a plain `Error: ...` for exit 1."""
    if exit_code(error) == USAGE:
        return click.UsageError(str(error), ctx=ctx)
    failure = click.ClickException(str(error))
    failure.exit_code = FAILED  # type: ignore[misc]  # click types it as a ClassVar; we override
    return failure


def finish(ok: bool) -> NoReturn:
    """Exit after a command that counted its own failures (some items, some judgements)."""
    raise SystemExit(OK if ok else FAILED)


class _MapsErrors:
    """`invoke` with the library's errors turned into click's, through `click_error`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except AnyCapError as e:
            raise click_error(e, ctx) from None


class AnyCapCommand(_MapsErrors, click.Command):
    """A command whose `AnyCapError`s exit through `exit_code`."""


class AnyCapGroup(_MapsErrors, click.Group):
    """The `anycap` group and its subgroups: their commands are `AnyCapCommand`s, and an
    `AnyCapError` from a plugin's plain click command is mapped here, the same way."""

    command_class = AnyCapCommand
    group_class = type  # subgroups are AnyCapGroups too
