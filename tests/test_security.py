"""Security defaults: remote media that cannot reach internal networks, safetensors only, no open
server by accident, and the transformers backend's 413s.

Traffic goes to 127.0.0.1 only. Private, link-local and metadata addresses are tested with a test
resolver and a connector that records the address it was asked for: the refusals happen before
the connector is called, so no packet leaves."""

import base64
import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2 as httpx
import pytest
import torch
from click.testing import CliRunner

from anycap_plugin import get_post_processor, testing
from anycap_plugin.access import auth_rule
from anycap_plugin.cli import cli
from anycap_plugin.errors import CheckpointError, OpenServerError, RequestError
from anycap_plugin.serve import ServeConfig, running
from anycap_plugin.serve.protocol import MediaPolicy
from anycap_plugin.serve.remote_media import fetch, host_allowed, refusal_reason

IMAGE = testing.sample_image("coffee").read_bytes()
PUBLIC = "93.184.216.34"


class MediaServer:
    """A loopback HTTP server for media: counts requests, records Host headers, serves scripted replies."""

    def __init__(self, routes=None):
        self.requests, self.hosts = [], []
        self.routes = routes or {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                outer.hosts.append(self.headers.get("Host"))
                route = outer.routes.get(self.path, ("image",))
                kind = route[0]
                if kind == "redirect":
                    self.send_response(302)
                    self.send_header("Location", route[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif kind == "chunked":  # no Content-Length: the limit must hold while streaming
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for _ in range(route[1]):
                        self.wfile.write(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                elif kind == "slow":
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    for _ in range(100):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.05)
                else:
                    body = route[1] if len(route) > 1 else IMAGE
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path="/img.png"):
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def media_server():
    server = MediaServer()
    yield server
    server.close()


class Recorder:
    """A resolver and a connector for tests: names map to given addresses; connections are recorded
    and, when `to` is set, actually made to that loopback port instead of the address asked for."""

    def __init__(self, answers, to=None):
        self.answers, self.to, self.lookups, self.connects = answers, to, [], []

    def resolve(self, host, port):
        self.lookups.append(host)
        answer = self.answers[host]
        return answer(len(self.lookups)) if callable(answer) else list(answer)

    def connect(self, address, timeout):
        self.connects.append(address)
        if self.to is None:
            raise AssertionError(f"connector called for {address}")
        return socket.create_connection(("127.0.0.1", self.to), timeout=timeout)

    def policy(self, **kw):
        return MediaPolicy(allow_remote=True, resolver=self.resolve, connector=self.connect, **kw)


# ---- addresses ------------------------------------------------------------------------------
INTERNAL = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",
]  # the last: Teredo for client 127.0.0.1


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_refused_before_any_connection(address):
    assert refusal_reason(ipaddress.ip_address(address)) is not None
    rec = Recorder({"media.example.com": [address]})
    with pytest.raises(RequestError) as e:
        fetch("http://media.example.com/a.png", rec.policy())
    assert (
        e.value.status == 403 and e.value.code == "remote_media_refused" and address in str(e.value)
    )
    assert rec.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/x",
        "http://[fd00::1]:8080/x",
        "http://0x7f.1/x",
        "http://2130706433/x",
        "http://localhost/x",
        "https://user:pw@media.example.com/x",
        "ftp://media.example.com/x",
        "http://media.example.com:notaport/x",
    ],
)
def test_literal_internal_hosts_and_bad_urls_are_refused(url):
    rec = Recorder(
        {"media.example.com": [PUBLIC]}
    )  # numeric and local names go through the system resolver
    policy = MediaPolicy(allow_remote=True, connector=rec.connect)
    with pytest.raises(RequestError) as e:
        fetch(url, policy)
    assert e.value.status == 403 and rec.connects == []


def test_a_name_with_any_internal_address_is_refused():
    rec = Recorder({"media.example.com": [PUBLIC, "10.0.0.7"]})
    with pytest.raises(RequestError, match="10.0.0.7, a private address"):
        fetch("http://media.example.com/a.png", rec.policy())
    assert rec.connects == []


def test_allowed_media_hosts_match_whole_label_suffixes():
    allowed = ("example.com", "cdn.images.org")
    assert host_allowed("example.com", allowed) and host_allowed("a.b.EXAMPLE.com.", allowed)
    assert host_allowed("x.cdn.images.org", allowed) and not host_allowed("images.org", allowed)
    assert not host_allowed("badexample.com", allowed) and not host_allowed(
        "example.com.evil.net", allowed
    )
    rec = Recorder({"example.com.evil.net": [PUBLIC]})
    with pytest.raises(RequestError, match="not one of the allowed media hosts"):
        fetch("http://example.com.evil.net/a.png", rec.policy(allowed_hosts=allowed))
    assert rec.lookups == [] and rec.connects == []


# ---- fetching from real loopback servers ------------------------------------------------------
def test_a_loopback_url_is_refused_and_the_server_sees_nothing(media_server):
    with pytest.raises(RequestError, match="loopback"):
        fetch(media_server.url(), MediaPolicy(allow_remote=True))
    assert media_server.requests == []


def test_a_public_host_is_fetched_from_the_address_that_was_checked(media_server):
    calls = iter([[PUBLIC], ["127.0.0.1"]])  # a rebinding resolver: public first, loopback after
    rec = Recorder({"media.example.com": lambda n: next(calls)}, to=media_server.port)
    assert fetch("http://media.example.com/img.png?sig=1", rec.policy()) == IMAGE
    assert rec.lookups == ["media.example.com"] and rec.connects == [
        (PUBLIC, 80)
    ]  # one lookup, pinned
    assert media_server.hosts == ["media.example.com"] and media_server.requests == [
        "/img.png?sig=1"
    ]


def test_every_redirect_hop_is_checked(media_server):
    other = MediaServer()
    try:
        media_server.routes.update(
            {
                "/to-loopback": ("redirect", other.url("/secret")),
                "/to-metadata": ("redirect", "http://169.254.169.254/latest/meta-data/"),
                "/to-file": ("redirect", "file:///etc/passwd"),
                "/relative": ("redirect", "/img.png"),
                "/loop": ("redirect", "/loop"),
            }
        )
        rec = Recorder({"media.example.com": [PUBLIC]}, to=media_server.port)
        for path, reason in (
            ("/to-loopback", "loopback"),
            ("/to-metadata", "link-local"),
            ("/to-file", "scheme"),
            ("/loop", "more than 5 redirects"),
        ):
            with pytest.raises(RequestError, match=reason) as e:
                fetch(f"http://media.example.com{path}", rec.policy())
            assert e.value.status == 403
        assert other.requests == []  # the refused hop was never requested
        assert media_server.requests.count("/loop") == 6
        assert fetch("http://media.example.com/relative", rec.policy()) == IMAGE
        assert all(address == (PUBLIC, 80) for address in rec.connects)
    finally:
        other.close()


def test_size_and_time_limits_hold_while_streaming(media_server):
    media_server.routes.update(
        {"/big": ("image", b"x" * 5000), "/chunked": ("chunked", 4), "/slow": ("slow",)}
    )
    rec = Recorder({"media.example.com": [PUBLIC]}, to=media_server.port)
    for path in ("/big", "/chunked"):
        with pytest.raises(RequestError) as e:
            fetch(f"http://media.example.com{path}", rec.policy(max_media_bytes=4096))
        assert e.value.status == 413 and e.value.code == "media_too_large"
    # a byte every 50 ms for 5 s: no read waits 0.5 s, so a 408 is the whole transfer's deadline
    with pytest.raises(RequestError) as e:
        fetch("http://media.example.com/slow", rec.policy(remote_timeout=0.5))
    assert e.value.status == 408


def test_the_server_refuses_remote_media_on_internal_hosts(media_server):
    config = ServeConfig(spec="stats", allow_remote_media=True)
    with running(config) as url:
        for media_url, reason in (
            (media_server.url(), "loopback"),
            ("http://169.254.169.254/x", "link-local"),
        ):
            r = httpx.post(
                url + "/chat/completions",
                timeout=30,
                json={
                    "model": "stats",
                    "messages": [
                        {
                            "role": "user",
                            "content": [{"type": "image_url", "image_url": {"url": media_url}}],
                        }
                    ],
                },
            )
            assert r.status_code == 403 and r.json()["error"]["code"] == "remote_media_refused"
            assert reason in r.json()["error"]["message"]
    with running(
        ServeConfig(
            spec="stats", allow_remote_media=True, allowed_media_hosts=["images.example.org"]
        )
    ) as url:
        r = httpx.post(
            url + "/chat/completions",
            timeout=30,
            json={
                "model": "stats",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "https://evil.example.net/a"},
                            }
                        ],
                    }
                ],
            },
        )
        assert r.status_code == 403 and "allowed media hosts" in r.json()["error"]["message"]
    assert media_server.requests == []


# ---- the transformers backend's 413s ----------------------------------------------------------
def test_per_media_and_chunked_body_limits_answer_413():
    config = ServeConfig(spec="stats", max_body_bytes=2 * 2**20, max_media_bytes=64 * 1024)
    big = base64.b64encode(b"\x89PNG" + b"x" * (100 * 1024)).decode()
    with running(config) as url:
        r = httpx.post(
            url + "/chat/completions",
            timeout=30,
            json={
                "model": "stats",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64," + big},
                            }
                        ],
                    }
                ],
            },
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "media_too_large"
        r = httpx.post(
            url + "/chat/completions",
            timeout=30,
            json={
                "model": "stats",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_audio", "input_audio": {"data": big, "format": "wav"}}
                        ],
                    }
                ],
            },
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "media_too_large"

        def chunks():  # a streamed body with no Content-Length, over the limit
            for _ in range(40):
                yield b"x" * (64 * 1024)

        r = httpx.post(
            url + "/chat/completions",
            content=chunks(),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert "content-length" not in {k.lower() for k in r.request.headers}
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        assert httpx.get(url.removesuffix("/v1") + "/health").status_code == 200


# ---- no open server by accident ---------------------------------------------------------------
def test_auth_rule():
    assert "API key is required" in auth_rule("0.0.0.0", "k", False)
    assert "this machine only" in auth_rule("127.0.0.1", None, False) and "only" in auth_rule(
        "::1", None, False
    )
    assert "NONE" in auth_rule("0.0.0.0", None, True)
    for host in ("0.0.0.0", "::", "192.168.1.5", "my-host"):
        with pytest.raises(OpenServerError, match="--no-auth"):
            auth_rule(host, None, False)
    with pytest.raises(OpenServerError, match="contradict"):
        auth_rule("0.0.0.0", "k", True)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--host", "0.0.0.0"], "without an API key"),
        (["--host", "::"], "without an API key"),
        (["--host", "0.0.0.0", "--no-auth", "--api-key", "k"], "contradict"),
        (["--allowed-media-hosts", "example.com"], "--allow-remote-media"),
    ],
)
def test_serve_refuses_to_start_open_by_accident(args, message, monkeypatch):
    monkeypatch.delenv("ANYCAP_API_KEY", raising=False)
    done = CliRunner().invoke(cli, ["serve", "-m", "stats", *args])
    assert done.exit_code == 2 and message in done.output


# ---- safetensors only -------------------------------------------------------------------------
def to_pickle_only(folder):
    """The same model saved as pytorch_model.bin only (a real pickle), its safetensors removed."""
    from safetensors.torch import load_file

    state = {}
    for f in folder.glob("*.safetensors"):
        state.update(load_file(f))
        f.unlink()
    torch.save(state, folder / "pytorch_model.bin")
    return folder


@pytest.fixture()
def no_unpickling(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)


def test_acm_and_hf_folders_with_pickles_only_are_refused(tmp_path, no_unpickling):
    acm = to_pickle_only(testing.build_tiny_acm(tmp_path / "acm"))
    with pytest.raises(CheckpointError, match=r"No safetensors weights .*pytorch_model.bin") as e:
        get_post_processor(f"acm:{acm}")
    assert "save_pretrained" in str(e.value)
    qwen = to_pickle_only(testing.build_tiny_qwen2_5_vl(tmp_path / "qwen"))
    from anycap_qwen2_5_vl.captioner import (
        Qwen25VLCaptioner,
    )  # an HFChatCaptioner, as InternVL's -hf path

    with pytest.raises(CheckpointError, match="No safetensors weights"):
        Qwen25VLCaptioner(str(qwen))


def test_lmdeploy_and_training_resume_refuse_pickles(tmp_path, no_unpickling):
    from anycap_plugin.serve.lmdeploy.launcher import acm_source
    from anycap_plugin.train.trainer import TrainConfig, _resume_point

    acm = to_pickle_only(testing.build_tiny_acm(tmp_path / "acm"))
    with pytest.raises(CheckpointError, match="No safetensors weights"):
        acm_source(f"acm:{acm}")
    run = tmp_path / "run"
    (run / "checkpoint-5").mkdir(parents=True)
    (run / "checkpoint-5" / "pytorch_model.bin").write_bytes(b"not loaded")
    (run / "checkpoint-5" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="checkpoint-5"):
        _resume_point(TrainConfig(model="m", data=[], output_dir=str(run), resume=True))
    assert _resume_point(TrainConfig(model="m", data=[], output_dir=str(run), resume=False)) is None
