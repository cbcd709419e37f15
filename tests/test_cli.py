"""The `anycap` command as a user runs it: a real process, real files, exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_plugins import hello_site  # noqa: F401  (session fixture: the installed plugin)

ANYCAP = Path(sys.executable).with_name("anycap")


def anycap(*args, env=None, cwd=None):
    base = {**os.environ, "ANYCAP_LOAD_PLUGINS": ""}
    base.update(env or {})
    cmd = [str(ANYCAP)] if ANYCAP.exists() else [sys.executable, "-m", "anycap_plugin"]
    return subprocess.run(
        cmd + list(args), capture_output=True, text=True, env=base, cwd=cwd, timeout=120
    )


def test_caption_exit_codes_and_output(tmp_path, media_dir):
    out = tmp_path / "caps.jsonl"
    ok = anycap(
        "caption",
        str(media_dir),
        "--model",
        "stats",
        "--post",
        "identity",
        "--instruction",
        "Describe it in one sentence.",
        "--output",
        str(out),
        "-O",
        "num_frames=4",
    )
    assert ok.returncode == 0, ok.stderr
    assert "4 captioned, 0 failed, 0 already done" in ok.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 4 and all(
        r["models"] == {"base": "stats", "post": "identity"} for r in rows
    )
    video = next(r for r in rows if r["modality"] == "video")
    assert (
        "4 sampled frames" in video["caption"]
        and video["instruction"] == "Describe it in one sentence."
    )

    (media_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    some_failed = anycap(
        "caption",
        str(media_dir),
        "-m",
        "stats",
        "-i",
        "Describe it in one sentence.",
        "-o",
        str(out),
    )
    assert some_failed.returncode == 1
    assert "0 captioned, 1 failed (CorruptMediaError: 1), 4 already done" in some_failed.stderr
    assert sum(1 for _ in out.read_text().splitlines()) == 5


@pytest.mark.parametrize(
    "args,message",
    [
        (["caption", "x.png", "-m", "stat", "-o", "o.jsonl"], "Did you mean: stats"),
        (
            ["caption", "x.png", "-m", "stats", "-p", "acme", "-o", "o.jsonl"],
            "Unknown post-processor 'acme'",
        ),
        (
            ["caption", "nothing/*.png", "-m", "stats", "-o", "o.jsonl"],
            "Nothing to caption in 'nothing/*.png'",
        ),
        (
            ["caption", "x.png", "-m", "stats", "-o", "o.jsonl", "-O", "colour=red"],
            "Allowed options: num_frames",
        ),
        (["caption", "x.png", "-m", "stats"], "Missing option '--output'"),
        (
            ["caption", "x.png", "-m", "stats", "-p", "identity", "-P", "beam=2", "-o", "o.jsonl"],
            "Invalid options for identity",
        ),
        (
            ["caption", "x.png", "-m", "stats", "-P", "beam=2", "-o", "o.jsonl"],
            "names no post-processor",
        ),
        (
            ["caption", "x.png", "-m", "stats+identity", "-p", "identity", "-o", "o.jsonl"],
            "already chains the post-processor 'identity'",
        ),
    ],
)
def test_usage_errors_exit_2(tmp_path, args, message):
    result = anycap(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


def test_models_and_plugins_listings(hello_site):  # noqa: F811
    models = anycap("models", "s*")
    assert models.returncode == 0 and "stats" in models.stdout and "instant" not in models.stdout
    env = {"PYTHONPATH": str(hello_site)}
    listed = anycap("plugins", "--json", env={**env, "ANYCAP_LOAD_PLUGINS": "hello"})
    found = {p["name"]: p for p in json.loads(listed.stdout)}
    assert found["hello"]["distribution"] == "anycap-hello" and found["hello"]["version"] == "0.3.0"
    assert "register_commands" in found["hello"]["hooks"]
    hello = anycap("hello", env={**env, "ANYCAP_LOAD_PLUGINS": "hello"})
    assert hello.returncode == 0 and hello.stdout.strip() == "hello from anycap-hello"
    # register_benchmarks is called: `anycap bench` lists and runs what a plugin registered
    assert "register_benchmarks" in found["hello"]["hooks"]
    listed = anycap("bench", env={**env, "ANYCAP_LOAD_PLUGINS": "hello"})
    assert "caption-length" in listed.stdout and "[hello]" in listed.stdout
    ran = anycap(
        "bench",
        "caption-length",
        "-m",
        "hello:x",
        "-A",
        "instruction=Say it.",
        env={**env, "ANYCAP_LOAD_PLUGINS": "hello"},
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"captioner": "hello:x", "words": 2}  # "Hello image"
    unknown = anycap("bench", "nope", "-m", "stats", env={**env, "ANYCAP_LOAD_PLUGINS": "hello"})
    assert unknown.returncode == 2 and "nope" in unknown.stderr


BLOCK_TEST_HELPERS = """
import importlib.abc, sys
class NoTestHelpers(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "anycap_plugin.testing":
            raise ImportError("production code imported anycap_plugin.testing")
sys.meta_path.insert(0, NoTestHelpers())
from anycap_plugin.cli import main
sys.argv = ["anycap", *sys.argv[1:]]
main()
"""


def test_demo_runs_offline_on_sample_media(tmp_path):
    result = anycap("demo", "--output", str(tmp_path / "demo.jsonl"))
    assert result.returncode == 0, result.stderr
    for label in ("[image]", "[video]", "[audio]", "base  stats", "post  acm:", "tokens in"):
        assert label in result.stdout
    assert "A 512x512 square image" in result.stdout  # the base caption, shown
    assert "random weights" in result.stdout and "complies" not in result.stdout
    records = [json.loads(x) for x in (tmp_path / "demo.jsonl").read_text().splitlines()]
    assert len(records) == 3
    for r in records:  # the noise is kept in the record, marked, and not judged
        assert r["meta"]["random_weights"] is True and r["meta"]["complies"] is None
        assert r["caption"] not in result.stdout


def test_a_caption_run_needs_no_test_helpers(tmp_path, media_dir):
    """The library runs with `anycap_plugin.testing` unimportable (only `anycap demo` reaches into it)."""
    env = {**os.environ, "ANYCAP_LOAD_PLUGINS": ""}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_TEST_HELPERS,
            "caption",
            str(media_dir),
            "-m",
            "stats",
            "-p",
            "identity",
            "-o",
            str(tmp_path / "caps.jsonl"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "caps.jsonl").read_text().splitlines()) == 4


def test_renamed_options_keep_working_with_a_warning(tmp_path):
    """`anycap train --model/--data` became `--acm/--acd` (elsewhere --model is a captioner spec and
    --data a dataset name); the old names are hidden aliases that warn."""
    shown = anycap("train", "--help")
    assert "--acm" in shown.stdout and "--acd" in shown.stdout and "--model" not in shown.stdout
    acd = tmp_path / "acd.jsonl"
    acd.write_text("")
    both = anycap(
        "train", "--model", "a", "--acm", "b", "--acd", str(acd), "-o", str(tmp_path / "run")
    )
    assert both.returncode == 2 and "--model is the old name of --acm" in both.stderr
    old = anycap(
        "train", "-m", str(tmp_path / "no-acm"), "-d", str(acd), "-o", str(tmp_path / "run")
    )
    assert (
        "warning: --model is now --acm" in old.stderr
        and "warning: --data is now --acd" in old.stderr
    )
    assert old.returncode != 0  # and then the missing folder is refused as before
    # `anycap synth --model` (a model name on the endpoint, not a spec) is now --writer-model
    shown = anycap("synth", "--help")
    assert "--writer-model" in shown.stdout and "--model" not in shown.stdout.replace("-model", "")
    (tmp_path / "one.png").write_bytes(
        b"\x89PNG\r\n\x1a\n"
    )  # an input that exists: refused later, for the key
    old = anycap(
        "synth", str(tmp_path / "one.png"), "-m", "gpt-4o", "-o", str(tmp_path / "acd.jsonl")
    )
    assert "warning: --model is now --writer-model" in old.stderr and old.returncode == 2
    assert "No API key" in old.stderr  # then refused as before, before any call


def test_one_mapping_from_errors_to_exit_codes(tmp_path):
    """Commands raise the library's errors as they are: a `RunError` (a call, a judge, a cluster) exits 1,
    every other `AnyCapError` exits 2 with the command's usage line, and a plugin's plain click command
    is mapped the same way."""
    import click
    from click.testing import CliRunner

    from anycap_plugin import errors
    from anycap_plugin.cli import cli
    from anycap_plugin.cli.exit_codes import FAILED, USAGE, exit_code

    tree = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.AnyCapError)
    ]
    assert len(tree) > 30
    run_errors = {
        c.__name__
        for c in tree
        if exit_code(
            c("x") if c is not errors.UnknownCaptionerError else c("x", "captioner", [], [])
        )
        == FAILED
    }
    assert run_errors == {
        "RunError",
        "CaptionerError",
        "WorkerCrashError",
        "CallError",
        "ReplyFormatError",
        "JudgeError",
        "LengthDropped",
        "RayUnavailableError",
        "LeaseLostError",
    }

    @click.command("raises")
    @click.argument("kind")
    def raises(kind):
        raise {"run": errors.JudgeError, "usage": errors.EvalDataError}[kind](
            "it went wrong.", hint="Do this."
        )

    cli.add_command(raises)
    try:
        runner = CliRunner()
        run = runner.invoke(cli, ["raises", "run"])
        assert run.exit_code == FAILED and "Error: it went wrong. Do this." in run.output
        usage = runner.invoke(cli, ["raises", "usage"])
        assert usage.exit_code == USAGE and "Error: it went wrong. Do this." in usage.output
        nested = runner.invoke(
            cli,
            [
                "eval",
                "manifest",
                "--refs",
                str(tmp_path / "none.jsonl"),
                "--media-root",
                str(tmp_path),
                "-o",
                str(tmp_path / "m.jsonl"),
            ],
        )
        assert nested.exit_code == USAGE
        (tmp_path / "bad.jsonl").write_text("not json\n")
        bad = runner.invoke(
            cli,
            [
                "eval",
                "manifest",
                "--refs",
                str(tmp_path / "bad.jsonl"),
                "--media-root",
                str(tmp_path),
                "-o",
                str(tmp_path / "m.jsonl"),
            ],
        )
        assert bad.exit_code == USAGE and "Usage: cli eval manifest" in bad.output, bad.output
    finally:
        cli.commands.pop("raises")


def test_refusals_are_typed_errors_not_hand_conversions(tmp_path):
    """What used to be a ValueError or OSError turned into a usage error by hand is now the library's
    own error, mapped like every other: exit 2 with the command's usage line and a next step."""
    from click.testing import CliRunner

    from anycap_plugin.cli import cli

    runner = CliRunner()
    (tmp_path / "run.jsonl").write_text("")
    (tmp_path / "eval").mkdir()
    alone = runner.invoke(cli, ["view", str(tmp_path / "eval"), str(tmp_path / "run.jsonl")])
    assert alone.exit_code == 2 and "An evaluation run is viewed alone." in alone.output
    unreadable = runner.invoke(
        cli, ["view", str(tmp_path / "eval")]
    )  # a folder without report.json
    assert unreadable.exit_code == 2 and "Cannot read the evaluation report" in unreadable.output
    from eval_data import SHARED

    qa_file = next((SHARED / "vidcapbench").rglob("*_QA.jsonl"))
    (tmp_path / "caps.jsonl").write_text("")
    tokenizer = runner.invoke(
        cli,
        [
            "eval",
            "vidcapbench",
            "--qa",
            str(qa_file),
            "--captions",
            str(tmp_path / "caps.jsonl"),
            "--judge-model",
            "j",
            "--tokenizer",
            str(tmp_path / "no-tokenizer"),
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert tokenizer.exit_code == 2 and "Cannot load the tokenizer" in tokenizer.output, (
        tokenizer.output
    )
