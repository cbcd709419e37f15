"""The `anycap` command: one module per command group (`caption`, `registry`, `checkpoints`,
`serve`, `eval`, ...), assembled in `app`; `exit_codes` maps every error to its exit status."""

from .app import cli, main

__all__ = ["cli", "main"]
