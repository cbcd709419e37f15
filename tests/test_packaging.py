"""What users install is what we test: the sdist is built, a wheel is built from the sdist (so the
sdist holds everything), the adapters' wheels beside it, all installed non-editable into a fresh
virtual environment; then `anycap --help` and `anycap demo` run from it.

The fresh environment takes its third-party packages from this one (a `.pth` line), so torch is
not installed twice; our own distributions come from the wheels, which shadow this environment's
editable installs of the same names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path | None = None, env: dict | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_sdist_and_wheels_install_into_a_fresh_environment_and_run(tmp_path):
    dist = tmp_path / "dist"
    sdist_name = run(
        sys.executable,
        "-c",
        f"from setuptools.build_meta import build_sdist; print(build_sdist({str(dist)!r}))",
        cwd=ROOT,
    ).split()[-1]
    with tarfile.open(dist / sdist_name) as tar:
        tar.extractall(tmp_path / "src", filter="data")
    (unpacked,) = (tmp_path / "src").iterdir()
    assert (unpacked / "LICENSE").exists()
    adapters = []  # built from copies: a build leaves build/ and egg-info behind
    for project in sorted(p.parent for p in (ROOT / "adapters").glob("*/pyproject.toml")):
        ignored = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
        adapters.append(
            shutil.copytree(project, tmp_path / "adapters" / project.name, ignore=ignored)
        )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist]
    run(*build, unpacked, *adapters)
    wheels = sorted(dist.glob("*.whl"))
    assert len(wheels) == 1 + len(adapters)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    (site / "reuse_dev_environment.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(*pip, "--python", python, "install", "-q", "--no-deps", "--no-index", *wheels)

    env = {k: v for k, v in os.environ.items() if k not in ("ANYCAP_LOAD_PLUGINS", "PYTHONPATH")}
    anycap = venv / "bin" / "anycap"
    where = run(
        python,
        "-c",
        "import anycap_plugin, anycap_openai; print(anycap_plugin.__file__)",
        cwd=tmp_path,
        env=env,
    )
    assert where.startswith(str(site)), where  # the wheel, not this checkout
    assert "Controllable captioning" in run(anycap, "--help", cwd=tmp_path, env=env)
    assert "anycap-openai" in run(anycap, "plugins", cwd=tmp_path, env=env)
    run(anycap, "demo", "--output", tmp_path / "demo.jsonl", cwd=tmp_path, env=env)
    records = [json.loads(line) for line in (tmp_path / "demo.jsonl").read_text().splitlines()]
    assert {r["modality"] for r in records} == {"image", "video", "audio"}
