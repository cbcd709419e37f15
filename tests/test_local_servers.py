"""DNS rebinding and cross-site requests against both local servers (`anycap view`, `anycap serve`):
real HTTP requests carrying a foreign `Host`, a `text/plain` POST."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from test_view import viewer

from anycap_plugin.serve import ServeConfig, running
from anycap_plugin.testing import sample_image

KEY = "sk-host-test-0123456789"


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("run") / "run.jsonl"
    path.write_text(json.dumps({"key": "k0", "caption": "a cat", "modality": "image"}) + "\n")
    return path


def status(url: str, host: str | None = None, **headers: str) -> int:
    if host is not None:
        headers["Host"] = host
    return httpx.get(url, headers=headers, timeout=30).status_code


def test_the_viewer_answers_its_own_names_only(run_file):
    with viewer(str(run_file)) as url:
        base = url.rstrip("/")
        port = base.rsplit(":", 1)[1]
        r = httpx.get(base + "/api/item?n=0", headers={"Host": f"attacker.example:{port}"})
        assert r.status_code == 421 and "a cat" not in r.text
        assert "--allow-host" in r.json()["error"]
        assert status(base + "/", "evil.example") == 421
        for name in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost."):
            assert status(base + "/api/item?n=0", name) == 200, name
    with viewer(str(run_file), "--allow-host", "captions.lan") as url:
        base = url.rstrip("/")
        assert status(base + "/api/item?n=0", "Captions.LAN:80") == 200
        assert status(base + "/api/item?n=0", "other.lan") == 421


def test_a_viewer_with_a_token_checks_host_only_against_allowed_names(run_file):
    auth = {"Authorization": "Bearer view-token"}
    with viewer(str(run_file), "--token", "view-token") as url:
        base = url.split("?")[0].rstrip("/")
        assert status(base + "/api/item?n=0", "box.example", **auth) == 200
    with viewer(str(run_file), "--token", "view-token", "--allow-host", "box.example") as url:
        base = url.split("?")[0].rstrip("/")
        assert status(base + "/api/item?n=0", "box.example", **auth) == 200
        assert status(base + "/api/item?n=0", "rebound.example", **auth) == 421
        port = base.rsplit(":", 1)[1]  # with a key, only the names given: not even loopback ones
        assert status(base + "/api/item?n=0", f"127.0.0.1:{port}", **auth) == 421
        assert status(base + "/api/item?n=0", "localhost", **auth) == 421


def test_serve_refuses_foreign_hosts_and_bodies_that_are_not_json():
    picture = (
        "data:image/png;base64," + base64.b64encode(sample_image("coffee").read_bytes()).decode()
    )
    content = [{"type": "image_url", "image_url": {"url": picture}}]
    body = json.dumps({"model": "stats", "messages": [{"role": "user", "content": content}]})
    with running(ServeConfig(spec="stats", allowed_hosts=["gpu.lan"])) as url:
        health = url.removesuffix("/v1") + "/health"
        r = httpx.get(health, headers={"Host": "evil.example"})
        assert r.status_code == 421 and r.json()["error"]["code"] == "wrong_host"
        assert status(health, "gpu.lan") == 200 and status(health, "[::1]:8000") == 200
        # what a page on any site may send without asking first: refused before the model runs
        for headers in ({"Content-Type": "text/plain"}, {}):
            r = httpx.post(url + "/chat/completions", content=body.encode(), headers=headers)
            assert r.status_code == 415, r.text
            assert r.json()["error"]["code"] == "unsupported_media_type"
        assert httpx.get(health).json()["items"] == 0
        r = httpx.post(
            url + "/chat/completions",
            content=body.encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert r.status_code == 200, r.text
        assert httpx.get(health).json()["items"] == 1
    with running(ServeConfig(spec="stats", api_key=KEY)) as url:  # a key: any name, with the key
        health = url.removesuffix("/v1") + "/health"
        assert status(health, "box.example", Authorization=f"Bearer {KEY}") == 200


LMDEPLOY_STANDIN = """
import sys
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from anycap_plugin.serve.lmdeploy.launcher import UvicornBehindBodyLimit

async def health(request):
    return JSONResponse({"status": "ok"})

app = Starlette(routes=[Route("/health", health)])
UvicornBehindBodyLimit(1000, keyed=False, allowed_hosts=["gpu.lan"]).run(
    app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning"
)
"""


def test_the_lmdeploy_backend_runs_its_app_behind_the_same_host_check(tmp_path):
    """LMDeploy's api_server calls `uvicorn.run(app, host=...)`; ours stands in for that module."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", LMDEPLOY_STANDIN, str(port)])
    try:
        url = f"http://127.0.0.1:{port}/health"
        for _ in range(300):  # until it listens (not a timing assertion: a bound on the wait)
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "the stand-in server exited"
                time.sleep(0.1)
        assert status(url) == 200 and status(url, "gpu.lan") == 200
        r = httpx.get(url, headers={"Host": "evil.example"})
        assert r.status_code == 421 and r.json()["error"]["code"] == "wrong_host"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
