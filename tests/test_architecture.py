"""The package's shape: no import cycles (lazy imports inside functions included), between modules
or between the package's parts (its top-level modules and subpackages); every error class in
`errors.py`; the test helpers (`testing/`) out of the library."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "anycap_plugin"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str], package_dir: Path = PACKAGE) -> set[str]:
    """Every module of the package that `path` imports, wherever the import statement is."""
    name = module_name(path, package_dir)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from pkg import name`: the submodule `pkg.name` if there is one, else `pkg` itself
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            while (
                target and target not in modules
            ):  # `from pkg import name`: the module, else its package
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    files = sorted(package_dir.rglob("*.py"))
    modules = {module_name(f, package_dir) for f in files}
    return {module_name(f, package_dir): imports_of(f, modules, package_dir) for f in files}


def test_no_import_cycles():
    graph = import_graph(PACKAGE)
    # a package's __init__ importing its own submodules is its layout, not a cycle between parts of it
    module_graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    assert cycles(module_graph) == []

    def part(m: str) -> str:
        return ".".join(m.split(".")[:2])

    parts: dict[str, set[str]] = {}
    for m, ts in graph.items():
        parts.setdefault(part(m), set()).update(part(t) for t in ts if part(t) != part(m))
    assert cycles(parts) == []


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub.b import thing  # lazy\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from .. import a\nthing = 1\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b"]]


def test_every_error_class_lives_in_the_one_tree():
    """One error tree, in one module: what AnyCap raises can be caught as `AnyCapError`, and every
    exception class is defined in `errors.py` (private control-flow signals, `_`-named, aside).

    Candidates are found in the source (a class named like an error, or deriving from one or from a
    class of `errors.py`); only their modules are imported, so this test does not import every
    third-party harness into the test process."""
    import importlib

    from anycap_plugin import errors
    from anycap_plugin.errors import AnyCapError

    tree = {
        n for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, BaseException)
    }

    def base_name(node: ast.expr) -> str:
        return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")

    def error_like(node: ast.ClassDef) -> bool:
        names = [node.name, *(base_name(b) for b in node.bases)]
        return any(
            n.endswith(("Error", "Exception", "Refused", "NotInstalled", "Dropped", "Unavailable"))
            or n in tree
            for n in names
        )

    outside, elsewhere = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        found = [
            n
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.ClassDef) and error_like(n)
        ]
        if not found:
            continue
        module = importlib.import_module(module_name(path))
        for node in found:
            cls = getattr(module, node.name, None)
            if not (isinstance(cls, type) and issubclass(cls, BaseException)) or issubclass(
                cls, Warning
            ):
                continue
            if not issubclass(cls, AnyCapError) and not node.name.startswith("_"):
                outside.append(f"{module.__name__}.{node.name}")
            if path.name != "errors.py" and not node.name.startswith("_"):
                elsewhere.append(f"{module.__name__}.{node.name}")
    assert outside == [] and elsewhere == []


def test_the_library_never_imports_the_test_helpers():
    """`anycap_plugin.testing` (samples, tiny models, the loopback server) is for tests, benchmarks and
    plugin authors. Only `anycap demo`, the install's smoke test on a tiny ACM, reaches into it."""
    graph = import_graph(PACKAGE)
    users = sorted(
        m
        for m, ts in graph.items()
        if not m.startswith("anycap_plugin.testing")
        and any(t == "anycap_plugin.testing" or t.startswith("anycap_plugin.testing.") for t in ts)
    )
    assert users == ["anycap_plugin.cli.demo"]


def test_adapters_import_only_public_modules():
    """Everything an adapter needs is importable from `anycap_plugin` or one of its first-level modules
    and packages (`anycap_plugin.hf`, `anycap_plugin.media`, `anycap_plugin.batch`, ...): the in-tree
    adapters, written as third parties write theirs, reach no deeper and no `_private` name."""
    adapters = PACKAGE.parent / "adapters"
    deep = []
    for path in sorted(adapters.glob("*/anycap_*/**/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("anycap_plugin"):
                names = [a.name for a in node.names]
                if node.module.count(".") > 1 or any(n.startswith("_") for n in names):
                    deep.append(
                        f"{path.relative_to(adapters)}: from {node.module} import {', '.join(names)}"
                    )
            elif isinstance(node, ast.Import):
                deep += [
                    f"{path.relative_to(adapters)}: import {a.name}"
                    for a in node.names
                    if a.name.startswith("anycap_plugin.") and a.name.count(".") > 1
                ]
    assert deep == []


SDK_CLIENTS = {"OpenAI", "AsyncOpenAI", "AzureOpenAI", "AsyncAzureOpenAI"}


def sdk_client_calls(path: Path) -> list[int]:
    """Lines where `path` builds an OpenAI SDK client (`openai.OpenAI(...)`, `AsyncOpenAI(...)`):
    calls in the code, so a docstring's example (`testing/server.py`'s) is not one."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in SDK_CLIENTS
    ]


def test_one_module_builds_openai_sdk_clients(tmp_path):
    """Every OpenAI-compatible call (openai adapter, judges, remote ACM, call engine) goes through
    `openai_compat.ChatTransport`: its limits, per-loop clients and key redaction hold everywhere."""
    sources = [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "adapters").glob("*/anycap_*/**/*.py")]
    builders = sorted(str(p.relative_to(PACKAGE.parent)) for p in sources if sdk_client_calls(p))
    assert builders == ["anycap_plugin/openai_compat.py"]
    probe = tmp_path / "probe.py"
    probe.write_text(
        '"""`OpenAI(base_url=u)` in prose."""\n'
        "import openai\nfrom openai import AsyncOpenAI\n"
        "a = openai.OpenAI(api_key='k')\nb = AsyncOpenAI(api_key='k')\n"
    )
    assert sdk_client_calls(probe) == [4, 5]
