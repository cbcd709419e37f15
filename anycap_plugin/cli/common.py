"""What several commands parse the same way: `KEY=VALUE` options (`-O` for the base captioner,
`-P` for the post-processor, one definition each), and options renamed in 0.2 (old names kept as
hidden aliases that warn)."""

from __future__ import annotations

import json
from typing import Any

import click

base_option_flag = click.option(
    "--option",
    "-O",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Per-call option of the base captioner, e.g. num_frames=4.",
)
post_option_flag = click.option(
    "--post-option",
    "-P",
    "post_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Per-call option of the post-processor, e.g. max_new_tokens=128.",
)


def parse_options(pairs: tuple[str, ...], flag: str = "--option") -> dict[str, Any]:
    """`KEY=VALUE` pairs; each value is read as JSON when it parses (numbers, booleans), else as text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=flag)
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def renamed(old: str, new: str, old_value: Any, new_value: Any) -> Any:
    """An option's value given under its old name: used, with a warning that names the new one."""
    if old_value in (None, ()):
        return new_value
    if new_value not in (None, ()):
        raise click.UsageError(f"{old} is the old name of {new}: give one of them.")
    click.echo(f"warning: {old} is now {new} (the old name still works, for now).", err=True)
    return old_value
