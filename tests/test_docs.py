"""The docs show what exists: every `anycap` command they show answers `--help`, and every name
their Python examples import from anycap_plugin is there."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.DOTALL)


def code_blocks() -> list[tuple[Path, str]]:
    return [(doc, block) for doc in DOCS for block in FENCE.findall(doc.read_text())]


def shown_commands() -> set[tuple[str, ...]]:
    """`anycap GROUP [SUB]` as the docs' code blocks and inline code show them."""
    from anycap_plugin.cli import cli, main  # noqa: F401  (plugins' commands are added by main)

    found: set[tuple[str, ...]] = set()
    lines = [line for _, block in code_blocks() for line in block.splitlines()]
    lines += [m for doc in DOCS for m in re.findall(r"`(anycap [^`]+)`", doc.read_text())]
    for (
        line
    ) in lines:  # a command line starts with `anycap` (prose and comments that say "anycap" do not)
        for words in re.findall(
            r"^\s*(?:\$\s*)?anycap ((?:[a-z][a-z0-9.-]*)(?: [a-z][a-z0-9.-]*)?)", line
        ):
            parts = words.split()
            command = cli.commands.get(parts[0])
            if command is None:
                found.add((parts[0],))
                continue
            sub = getattr(command, "commands", {}).get(parts[1]) if len(parts) > 1 else None
            found.add((parts[0], parts[1]) if sub is not None else (parts[0],))
    return found


def test_every_command_the_docs_show_answers_help(monkeypatch):
    from anycap_plugin import plugins
    from anycap_plugin.cli import cli

    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "capflow")  # the in-tree plugin that adds a command
    plugins.reset()
    plugins.plugin_manager().hook.register_commands(
        cli=cli
    )  # `capflow-filter`, as `anycap` adds it
    runner = CliRunner()
    commands = shown_commands()
    assert (
        ("eval", "anycapeval") in commands
        and ("view",) in commands
        and ("lmms-eval-tasks",) in commands
    )
    unknown = sorted(c for c in commands if c[0] not in cli.commands)
    assert unknown == [], f"the docs show commands that do not exist: {unknown}"
    for command in sorted(commands):
        result = runner.invoke(cli, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_names_the_docs_import_exist():
    missing = []
    for doc, block in code_blocks():
        for module, names in re.findall(
            r"^\s*from (anycap_plugin[\w.]*) import ([^\n#(]+)", block, re.MULTILINE
        ):
            mod = importlib.import_module(module)
            for name in (n.strip().split(" as ")[0] for n in names.split(",")):
                if name and not hasattr(mod, name):
                    missing.append(f"{doc.name}: from {module} import {name}")
    assert missing == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_name_files_that_exist(doc):
    """Paths the docs point at in the source tree (`anycap_plugin/...`, `benchmarks/...`, `docs/...`)."""
    missing = []
    for path in re.findall(
        r"`((?:anycap_plugin|benchmarks|docs|adapters|requirements)/[\w./-]+)`", doc.read_text()
    ):
        target = ROOT / path.rstrip("/")
        if not target.exists() and not any(ROOT.glob(path)):
            missing.append(path)
    assert missing == []


def shown_command_lines() -> list[tuple[str, str]]:
    """Each `anycap ...` command line in the docs' code blocks, with its indented continuation
    lines, comments cut: (doc name, line)."""
    found = []
    for doc, block in code_blocks():
        current: list[str] = []
        for line in [*block.splitlines(), "<end>"]:
            text = line.split(" #")[0].rstrip().rstrip("\\")
            if current and line[:1].isspace() and not text.strip().startswith("anycap "):
                current.append(text)
                continue
            if current:
                found.append((doc.name, " ".join(current)))
                current = []
            if re.match(r"^\s*(?:\$\s*)?anycap [a-z]", text):
                current = [text]
    return found


def test_every_option_the_docs_show_exists(monkeypatch):
    """An option shown on a command line in the docs is one its command takes (`--help` lists it)."""
    from anycap_plugin import plugins
    from anycap_plugin.cli import cli

    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "capflow")
    plugins.reset()
    plugins.plugin_manager().hook.register_commands(cli=cli)
    lines = shown_command_lines()
    assert len(lines) > 20
    missing = []
    for doc, line in lines:
        words = re.findall(
            r"(?<![\w-])(--[a-z][a-z0-9-]*|[a-z][a-z0-9.-]*)", line.split("anycap ", 1)[1]
        )
        command = cli.commands.get(words[0])
        if command is None:
            continue  # test_every_command_the_docs_show_answers_help names it
        if len(words) > 1 and words[1] in getattr(command, "commands", {}):
            command = command.commands[words[1]]
        taken = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        missing += [
            f"{doc}: anycap {words[0]} {o}"
            for o in words
            if o.startswith("--") and o not in taken and o != "--help"
        ]
    assert missing == [], missing


def test_every_command_and_subcommand_has_help_text(monkeypatch):
    from anycap_plugin import plugins
    from anycap_plugin.cli import cli

    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "capflow")
    plugins.reset()
    plugins.plugin_manager().hook.register_commands(cli=cli)
    silent, todo = [], [("anycap", cli)]
    while todo:
        name, command = todo.pop()
        if not (command.help or command.short_help or "").strip():
            silent.append(name)
        todo += [(f"{name} {n}", c) for n, c in getattr(command, "commands", {}).items()]
    assert silent == []


def visible_options(command) -> set[str]:
    return {
        o
        for p in command.params
        if not getattr(p, "hidden", False)
        for o in (*p.opts, *p.secondary_opts)
    }


def test_the_vocabulary_table_in_cli_md_is_what_the_commands_take(monkeypatch):
    """docs/cli.md, "One vocabulary": each row's option is shown by `--help` of each command it names."""
    from anycap_plugin import plugins
    from anycap_plugin.cli import cli

    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "capflow")
    plugins.reset()
    plugins.plugin_manager().hook.register_commands(cli=cli)
    text = (ROOT / "docs" / "cli.md").read_text()
    rows = re.findall(r"^\| `(-[^`]+)` \| [^|]+ \| (.+) \|$", text, re.MULTILINE)
    assert len(rows) >= 10
    missing = []
    for names, commands in rows:
        flags = [f for f in re.split(r"[/ ]", names) if f.startswith("-")]
        for shown in re.findall(r"`([a-z][a-z -]*)`", commands):
            command = cli
            for word in shown.split():
                command = command.commands[word]
            missing += [f"anycap {shown} {f}" for f in flags if f not in visible_options(command)]
    assert missing == []


def test_every_option_cli_md_names_exists(monkeypatch):
    """An option docs/cli.md names anywhere (prose included) is shown by some command's `--help`."""
    from anycap_plugin import plugins
    from anycap_plugin.cli import cli

    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "capflow")
    plugins.reset()
    plugins.plugin_manager().hook.register_commands(cli=cli)
    shown: set[str] = set()
    todo = [cli]
    while todo:
        command = todo.pop()
        shown |= visible_options(command)
        todo += list(getattr(command, "commands", {}).values())
    named = set(
        re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", (ROOT / "docs" / "cli.md").read_text())
    )
    old_names = {"--judge", "--judge-args", "--api-nproc"}  # named as the aliases they now are
    assert sorted(named - shown - old_names - {"--help"}) == []
