"""Light commands stay light: the installed console script, with the in-tree plugins loaded as every
user has them (not `ANYCAP_LOAD_PLUGINS=""`), answers `--help`, `models`, `plugins` and every
command's and subcommand's `--help` without importing a heavy library. Registering a plugin must
not load torch: every command pays for what registration imports (it once cost 11-17 s)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ANYCAP = Path(sys.executable).with_name("anycap")
HEAVY = {
    "torch",
    "transformers",
    "ray",
    "lmdeploy",
    "vlmeval",
    "lmms_eval",
    "pyarrow",
    "openai",
    "numpy",
    "PIL",
    "av",
    # not heavy, but together 90 ms of `anycap --help`'s budget (4x a bare click + pluggy):
    # options classes and the async runner load when a captioner is built
    "pydantic",
    "asyncio",
}


def run_light(*args: str) -> tuple[str, set[str]]:
    """The command's stdout, and the top-level packages it imported (`-X importtime`)."""
    env = {k: v for k, v in os.environ.items() if k != "ANYCAP_LOAD_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(ANYCAP), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {
        m.group(1).split(".")[0]
        for m in re.finditer(
            r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", done.stderr, re.MULTILINE
        )
    }
    return done.stdout, imported


def subcommands(help_text: str) -> list[str]:
    """The names in a click help page's Commands section."""
    section = help_text.partition("\nCommands:\n")[2]
    return [m.group(1) for m in re.finditer(r"^  (\S+)", section, re.MULTILINE)]


def test_light_commands_import_no_heavy_library():
    seen: dict[tuple[str, ...], set[str]] = {}
    todo: list[tuple[str, ...]] = [()]
    while todo:
        path = todo.pop()
        text, imported = run_light(*path, "--help")
        seen[path + ("--help",)] = imported & HEAVY
        todo.extend(path + (name,) for name in subcommands(text))
    for args in (("models",), ("plugins",)):
        text, imported = run_light(*args)
        seen[args] = imported & HEAVY
    plugins_text = run_light("plugins")[0]
    assert "anycap-openai" in plugins_text and "anycap-internvl" in plugins_text  # really loaded
    assert ("eval", "--help") in seen and ("caption", "--help") in seen
    assert len(seen) > 15
    heavy = {" ".join(args): sorted(mods) for args, mods in seen.items() if mods}
    assert not heavy, f"light commands imported heavy libraries: {heavy}"


def test_media_loads_its_libraries_on_first_use(image_path, video_path):
    """`Media` itself is light; decoding loads what it needs then (PIL for an image, numpy for
    audio)."""
    code = (
        "import sys; from anycap_plugin import Media, wrap, get_captioner; "
        "assert not {'numpy', 'PIL'} & set(sys.modules); "
        f"Media.load({str(image_path)!r}).image(); assert 'PIL' in sys.modules; "
        f"Media.load({str(video_path)!r}).audio(); assert 'numpy' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
