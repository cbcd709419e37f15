"""The plugin host: entry points, isolation of broken plugins, spec resolution."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from anycap_plugin import UnknownCaptionerError, get_captioner, list_captioners, plugins, wrap
from anycap_plugin.errors import OptionsError

HELLO_DIST = Path(__file__).parent / "plugin_dists" / "anycap-hello"


@pytest.fixture(scope="session")
def hello_site(tmp_path_factory):
    """anycap-hello installed by pip into a site directory of its own (no import of it anywhere)."""
    site = tmp_path_factory.mktemp("hello-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(HELLO_DIST),
        ],
        check=True,
    )
    assert (site / "anycap_hello").is_dir() and list(site.glob("anycap_hello-*.dist-info"))
    return site


@pytest.fixture()
def on_path(monkeypatch):
    def add(site):
        monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()
        plugins.reset()

    return add


def fake_distribution(site: Path, dist: str, module: str, code: str) -> None:
    """An installed distribution as pip leaves it: a module plus dist-info with entry points."""
    (site / f"{module}.py").write_text(code)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[anycap]\n{dist} = {module}\n")


def test_builtins_load_even_with_plugins_disabled():
    assert list_captioners() == [
        "instant",
        "stats",
        "vlmeval",
    ]  # vlmeval: VLMEvalKit ships with the core
    assert plugins.list_post_processors() == ["acm", "identity"]
    assert [p.name for p in plugins.plugins()] == [
        "builtins.offline",
        "builtins.acm",
        "builtins.vlmeval",
        "builtins.lmdeploy",
        "builtins.benchmarks",
    ]


def test_third_party_plugin_found_through_its_entry_point(
    hello_site, on_path, monkeypatch, image_path
):
    on_path(hello_site)
    monkeypatch.delenv("ANYCAP_LOAD_PLUGINS")
    assert "anycap_hello" not in sys.modules
    info = {p.name: p for p in plugins.plugins()}["hello"]
    assert (info.distribution, info.version, info.error) == ("anycap-hello", "0.3.0", None)
    assert info.hooks == [
        "register_benchmarks",
        "register_captioners",
        "register_commands",
        "register_post_processors",
    ]
    assert list_captioners("h*") == ["hello"]
    c = get_captioner("hello:world").caption(image_path, greeting="Hi")
    assert c.text == "Hi image" and c.models == {"base": "hello:world"}
    chained = get_captioner("hello:a+b+shout")  # '+' inside the model part stays there
    assert chained.base.id == "hello:a+b"
    out = chained.caption(image_path)
    assert out.text == "HELLO IMAGE!" and out.base_text == "Hello image"
    assert out.usage["post"] == {"prompt_tokens": 5, "completion_tokens": 2}


def test_load_env_selects_plugins(hello_site, on_path, monkeypatch):
    on_path(hello_site)
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "anycap-hello")  # a distribution name works
    assert "hello" in list_captioners()
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "someother")
    plugins.reset()
    assert "hello" not in list_captioners()


def test_broken_plugins_are_reported_and_the_rest_keep_working(
    tmp_path, hello_site, on_path, monkeypatch, image_path
):
    fake_distribution(
        tmp_path, "anycap-broken", "anycap_broken_mod", "raise ImportError('needs libfoo 2.0')\n"
    )
    fake_distribution(
        tmp_path,
        "anycap-nospec",
        "anycap_nospec_mod",
        "from anycap_plugin import hookimpl\n@hookimpl\ndef register_widgets(register):\n    pass\n",
    )
    fake_distribution(
        tmp_path,
        "anycap-raises",
        "anycap_raises_mod",
        "from anycap_plugin import hookimpl\n@hookimpl\ndef register_captioners(register):\n"
        "    raise RuntimeError('no GPU')\n",
    )
    on_path(tmp_path)
    on_path(hello_site)
    monkeypatch.delenv("ANYCAP_LOAD_PLUGINS")
    found = {p.name: p for p in plugins.plugins()}
    assert "needs libfoo 2.0" in found["anycap-broken"].error
    assert "register_widgets" in found["anycap-nospec"].error  # a hook with no spec fails fast
    assert "no GPU" in found["anycap-raises"].error
    assert found["hello"].error is None
    assert get_captioner("hello").caption(image_path).text == "Hello image"
    with pytest.raises(Exception, match="anycap-broken"):
        plugins.require_plugins_ok()


def test_unknown_names_suggest_close_matches():
    with pytest.raises(UnknownCaptionerError) as err:
        get_captioner("stat")
    assert err.value.close[0] == "stats" and "Did you mean: stats" in str(err.value)
    with pytest.raises(UnknownCaptionerError, match="Known captioners: instant, stats"):
        get_captioner("zzzzzz")
    with pytest.raises(UnknownCaptionerError, match="post-processor"):
        wrap("stats", "identiy")


def test_bad_factory_arguments_are_options_errors():
    with pytest.raises(OptionsError, match="takes no model"):
        get_captioner("stats:some-model")
    with pytest.raises(OptionsError):
        get_captioner("stats", bogus=1)


def test_every_hook_is_documented():
    from anycap_plugin import hookspecs

    names = [n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, "anycap_spec")]
    assert sorted(names) == [
        "adapt_captioner",
        "register_benchmarks",
        "register_captioners",
        "register_commands",
        "register_post_processors",
    ]
    root = Path(__file__).resolve().parents[1]
    docs = (root / "README.md").read_text() + (root / "docs" / "plugins.md").read_text()
    for name in names:
        assert getattr(hookspecs, name).__doc__.strip(), name
        assert f"`{name}" in docs, f"{name} is not documented in README.md or docs/plugins.md"


@pytest.mark.parametrize(
    "spec", ["openai", "internvl", "qwen2.5-vl", "minicpm-o", "vlmeval", "stats+acm"]
)
def test_a_spec_without_its_model_is_one_error_and_exit_2(spec, monkeypatch, image_path, tmp_path):
    from click.testing import CliRunner

    from anycap_plugin.cli import cli
    from anycap_plugin.errors import OptionsError

    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "openai,internvl,qwen2_5_vl,minicpm_o")
    plugins.reset()
    name = spec.split("+")[-1]
    with pytest.raises(
        OptionsError, match=f"'{name}' needs a model: use a spec like '{name}:MODEL'"
    ):
        get_captioner(spec)
    done = CliRunner().invoke(
        cli, ["caption", str(image_path), "--model", spec, "-o", str(tmp_path / "o.jsonl")]
    )
    assert done.exit_code == 2 and "needs a model" in done.output
    with pytest.raises(OptionsError, match="takes no model"):
        get_captioner("stats:something")


def test_models_lists_an_adapters_options(monkeypatch):
    from click.testing import CliRunner

    from anycap_plugin.cli import cli

    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "openai,internvl")
    plugins.reset()
    shown = CliRunner().invoke(cli, ["models", "--options", "openai"]).output
    assert (
        "captioner openai:MODEL" in shown
        and "max_tokens: int | None = 512" in shown
        and "detail:" in shown
    )
    shown = CliRunner().invoke(cli, ["models", "--options", "internvl"]).output
    assert "modalities: image, video" in shown and "max_new_tokens: int = " in shown
    assert (
        "post-processor acm:MODEL" in CliRunner().invoke(cli, ["models", "--options", "acm"]).output
    )
    assert (
        "captioner stats  [builtins.offline]"
        in CliRunner().invoke(cli, ["models", "--options", "stats"]).output
    )
    missing = CliRunner().invoke(
        cli, ["models", "--options", "nope"]
    )  # the same error as an unknown spec
    assert (
        missing.exit_code == 2
        and "Unknown captioner/post-processor 'nope'. Did you mean: openai?" in missing.output
    )
    far = CliRunner().invoke(cli, ["models", "--options", "zzzz"])
    assert (
        far.exit_code == 2
        and "Known captioner/post-processors: " in far.output
        and "stats" in far.output
    )
