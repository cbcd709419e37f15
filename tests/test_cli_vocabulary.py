"""One vocabulary across commands (docs/cli.md, "One vocabulary"): the same option names mean the
same things everywhere, and each old name is a hidden alias that still works and warns on stderr."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx2 as httpx
import openai
import pytest
from click.testing import CliRunner

from anycap_plugin import plugins, testing
from anycap_plugin.cli import cli
from anycap_plugin.command_line import (
    concurrency_option,
    judge_args_json,
    judge_options,
    renamed_argument,
    renamed_option,
)

ANYCAP = Path(sys.executable).with_name("anycap")
KEY = "sk-vocabulary-test-0123456789"

CHAIN = ("-m", "--model", "-p", "--post", "-O", "--option", "-P", "--post-option", "--num-frames")
JUDGE = ("--judge-model", "--judge-base-url", "--judge-option")
CONCURRENCY = ("-c", "--concurrency")
# (command, the options it shares); capflow-filter is the in-tree plugin's command
SHARED = [
    (("caption",), CHAIN + CONCURRENCY + ("--media-root",)),
    (("demo",), CHAIN),
    (("serve",), CHAIN + ("--media-root",)),
    (("vlmeval",), CHAIN + JUDGE + CONCURRENCY),
    (("synth",), CONCURRENCY + ("--media-root", "--num-frames")),
    (("capflow-filter",), CONCURRENCY + ("--media-root", "--num-frames")),
    (("eval", "anycapeval"), JUDGE + CONCURRENCY + ("--media-root",)),
    (("eval", "vidcapbench"), JUDGE + CONCURRENCY),
    (("lmms-eval-tasks",), JUDGE + CONCURRENCY + ("--media-root",)),
]
# (command, old name, new name)
RENAMED = [
    (("vlmeval",), "--judge", "--judge-model"),
    (("vlmeval",), "--judge-args", "--judge-option"),
    (("vlmeval",), "--api-nproc", "--concurrency"),
    (("train",), "--model", "--acm"),
    (("train",), "--data", "--acd"),
    (("synth",), "--model", "--writer-model"),
]


@pytest.fixture(scope="module")
def app():
    """The real `anycap` group with the capflow plugin's command added, as `anycap` adds it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANYCAP_LOAD_PLUGINS", "capflow")
        plugins.reset()
        plugins.plugin_manager().hook.register_commands(cli=cli)
        yield cli
    plugins.reset()


def command(app, path):
    found = app
    for name in path:
        found = found.commands[name]
    return found


def shown_options(cmd) -> set[str]:
    return {o for p in cmd.params if not getattr(p, "hidden", False) for o in p.opts}


@pytest.mark.parametrize("path,options", SHARED, ids=lambda x: " ".join(x))
def test_every_command_uses_the_shared_names(app, path, options):
    assert set(options) <= shown_options(command(app, path))


@pytest.mark.parametrize("path,old,new", RENAMED, ids=lambda x: x if isinstance(x, str) else x[0])
def test_old_names_are_hidden_and_new_ones_shown(app, path, old, new):
    cmd = command(app, path)
    assert new in shown_options(cmd) and old not in shown_options(cmd)
    assert any(old in p.opts for p in cmd.params)  # still taken
    shown = CliRunner().invoke(app, [*path, "--help"]).output
    assert not re.search(rf"(?<![\w-]){re.escape(old)}(?![\w-])", shown)


def test_serve_takes_no_positional_spec_in_its_usage(app):
    out = CliRunner().invoke(app, ["serve", "--help"]).output
    assert out.startswith("Usage: cli serve [OPTIONS]\n")


# a command built from the shared declarations, that prints what reached it
@click.command()
@renamed_argument("spec", new="-m/--model", target="model")
@click.option("--model", "-m")
@judge_options(allowed=None)
@renamed_option("--judge", new="--judge-model", target="judge_model")
@renamed_option(
    "--judge-args", new="--judge-option", target="judge_options", convert=judge_args_json
)
@concurrency_option(4, "Calls in flight.")
@renamed_option("--api-nproc", new="--concurrency", target="concurrency", type=click.IntRange(1))
def probe(**params):
    click.echo(json.dumps(params, sort_keys=True))


def run_probe(*args):
    return CliRunner().invoke(probe, list(args))


def test_an_old_name_fills_the_new_parameter_and_warns_once():
    new = run_probe("-m", "stats", "--judge-model", "j", "--judge-option", "repeats=3", "-c", "7")
    assert new.exit_code == 0 and new.stderr == ""
    expected = json.loads(new.stdout)
    assert expected == {
        "model": "stats",
        "judge_model": "j",
        "judge_base_url": None,
        "judge_options": {"repeats": 3},
        "concurrency": 7,
    }
    old = run_probe("stats", "--judge", "j", "--judge-args", '{"repeats": 3}', "--api-nproc", "7")
    assert old.exit_code == 0 and json.loads(old.stdout) == expected
    assert sorted(old.stderr.splitlines()) == [
        "warning: --api-nproc is now --concurrency (the old name still works, for now).",
        "warning: --judge is now --judge-model (the old name still works, for now).",
        "warning: --judge-args is now --judge-option (the old name still works, for now).",
        "warning: the positional SPEC is now -m/--model (the old name still works, for now).",
    ]
    defaults = run_probe()
    assert json.loads(defaults.stdout)["concurrency"] == 4 and defaults.stderr == ""


@pytest.mark.parametrize(
    "args,message",
    [
        (("--api-nproc", "2", "-c", "3"), "--api-nproc is the old name of --concurrency"),
        (("-c", "3", "--api-nproc", "2"), "--api-nproc is the old name of --concurrency"),
        (("stats", "-m", "stats"), "the positional SPEC is the old name of -m/--model"),
        (("--judge-args", "[1]"), "not a JSON object; give each setting as --judge-option"),
        (("--judge-option", "repeats"), "'repeats' is not KEY=VALUE"),
    ],
)
def test_old_and_new_name_together_or_bad_values_are_usage_errors(args, message):
    done = run_probe(*args)
    assert done.exit_code == 2 and message in done.output


# ---- the real commands --------------------------------------------------------------------------


def test_judge_option_keys_are_checked(app, tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text("")
    done = CliRunner().invoke(
        app,
        [
            *("eval", "vidcapbench", "--qa", str(qa), "--captions", str(qa)),
            *("--judge-model", "j", "--judge-option", "colour=red", "-o", str(tmp_path / "out")),
        ],
    )
    assert done.exit_code == 2
    assert "unknown setting colour; allowed: timeout, max_retries, invalid_retries" in done.output


def test_num_frames_is_the_base_captioners_option(app, tmp_path):
    video = testing.sample_video()
    out = tmp_path / "caps.jsonl"
    done = CliRunner().invoke(
        app, ["caption", str(video), "-m", "stats", "--num-frames", "3", "-o", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert "across 3 sampled frames" in json.loads(out.read_text())["caption"]
    twice = CliRunner().invoke(
        app,
        ["caption", str(video), "-m", "stats", "--num-frames", "3", "-O", "num_frames=4"]
        + ["-o", str(out)],
    )
    assert twice.exit_code == 2 and "Give the frame count once" in twice.output
    none = CliRunner().invoke(
        app, ["caption", str(video), "-m", "instant", "--num-frames", "3", "-o", str(out)]
    )
    assert none.exit_code == 2
    assert "--num-frames sets the base captioner's num_frames option, and instant has none" in (
        none.output
    )


def test_serve_names_what_it_serves_with_m_and_p(app, monkeypatch):
    monkeypatch.delenv("ANYCAP_API_KEY", raising=False)
    runner = CliRunner()
    # the positional SPEC still names the chain, with a warning (then the open bind is refused)
    old = runner.invoke(app, ["serve", "stats", "--host", "0.0.0.0"])
    assert old.exit_code == 2 and "without an API key" in old.output
    assert "warning: the positional SPEC is now -m/--model" in old.stderr
    new = runner.invoke(app, ["serve", "-m", "stats", "--host", "0.0.0.0"])
    assert new.exit_code == 2 and "without an API key" in new.output and "warning" not in new.stderr
    nothing = runner.invoke(app, ["serve", "--host", "0.0.0.0"])
    assert nothing.exit_code == 2 and "Name what to serve" in nothing.output
    alone = runner.invoke(app, ["serve", "-p", "identity", "-O", "num_frames=2"])
    assert alone.exit_code == 2 and "-O and --num-frames set a base captioner's" in alone.output
    bad = runner.invoke(app, ["serve", "-p", "identity", "-P", "colour=red"])
    assert bad.exit_code == 2 and "Invalid options for identity: colour" in bad.output


def test_serve_applies_base_options_to_every_request(tmp_path):
    """`anycap serve -m stats -O num_frames=3`: the option reaches each call (the installed script)."""
    shutil.copy(testing.sample_video(), tmp_path / "clip.mp4")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["serve", "-m", "stats", "-O", "num_frames=3", "--media-root", str(tmp_path)]
    proc = subprocess.Popen(
        [str(ANYCAP), *args, "--port", str(port), "--api-key", KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/models", headers={"Authorization": f"Bearer {KEY}"})
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        client = openai.OpenAI(base_url=base, api_key=KEY, max_retries=0)
        reply = client.chat.completions.create(
            model="stats",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "video_url", "video_url": {"url": str(tmp_path / "clip.mp4")}}
                    ],
                }
            ],
        )
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "across 3 sampled frames" in reply.choices[0].message.content, output[-2000:]
