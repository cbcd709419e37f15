"""The built-in benchmarks (`eval/benchmarks/`: one module each), registered like a plugin's."""

from __future__ import annotations

from ..hookspecs import Register, hookimpl


@hookimpl
def register_benchmarks(register: Register) -> None:
    from ..eval.benchmarks import builtin

    for benchmark in builtin():
        register(benchmark)
