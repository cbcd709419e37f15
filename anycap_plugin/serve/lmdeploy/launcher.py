"""`anycap serve acm:PATH --backend lmdeploy`: LMDeploy's OpenAI-compatible api_server, serving ACM.

Every ACM, ours or published, is served the same way: as an ACM folder (a published InternVL-chat
checkpoint, folder or hub id, converted once into the cache by `anycap_plugin.acm.convert`), through
our module map. LMDeploy decides whether a model takes media from a fixed list of architecture
names (`lmdeploy.archs.check_vl_llm`); `enable_acm()` adds ours to that check, registers the
request side and the engine config builder, and returns the engine options that name the module
map. Why not LMDeploy's own InternVL support for published checkpoints: without the checkpoint's
Python files it cannot start (its config builder reads `llm_config` as an object, which only the
checkpoint's `configuration_internvl_chat.py` makes), and running that code is the user's call:
`--trust-remote-code` does, and says which files it fetched (`docs/serving.md`).
`serve()` starts the server with `anycap serve`'s safety defaults (guards.py): loopback, one API
key, no CORS, our media policy and body limit; `launch_config()` is what it would hand LMDeploy.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import OptionsError
from ..protocol import MediaPolicy
from . import ARCH, MODULE_MAP_FILE

INSTALL_HINT = (
    "LMDeploy runs on NVIDIA GPUs: pip install 'anycap-plugin[lmdeploy]' in an environment with "
    "CUDA (LMDeploy pins its own torch)."
)


def enable_acm() -> dict[str, Any]:
    """Make this process's LMDeploy serve ACM; returns PytorchEngineConfig options."""
    try:
        from lmdeploy import archs
    except ImportError:
        raise OptionsError("LMDeploy is not installed.", hint=INSTALL_HINT) from None
    from . import preprocessor  # noqa: F401  (registers the VISION_MODELS entry)
    from .engine_model import (
        ModuleMapPath,  # registers the engine config builder, here and in the engine process
    )

    check = archs.check_vl_llm
    if not getattr(check, "_anycap", False):

        def check_vl_llm(backend: str, config: dict) -> bool:
            return (config.get("architectures") or [None])[0] == ARCH or check(backend, config)

        check_vl_llm._anycap = True  # type: ignore[attr-defined]
        archs.check_vl_llm = check_vl_llm
    return {"custom_module_map": ModuleMapPath(MODULE_MAP_FILE)}


@dataclass(frozen=True)
class ServedModel:
    """What LMDeploy loads: `model_path`, and whether through our module map or, with the user's
    `trust_remote_code`, through LMDeploy's InternVL support and the checkpoint's own Python files."""

    model_path: str
    module_map: bool = True
    trust_remote_code: bool = False
    remote_code: tuple[str, ...] = field(default=())  # the checkpoint's Python files that will run


def acm_source(spec: str, trust_remote_code: bool = False) -> ServedModel:
    """The folder LMDeploy loads for `acm:PATH` or `acm:HUB_ID` (see the module docstring)."""
    from ...acm.convert import is_internvl_chat
    from ...acm_runtime.resolve import resolve_model
    from ...model_loading import looks_like_path, require_safetensors

    name, _, path = spec.partition(":")
    if name != "acm" or not path or path.startswith(("http://", "https://")) or "+" in spec:
        raise OptionsError(
            f"The LMDeploy backend serves one ACM (acm:PATH or acm:HUB_ID), not {spec!r}.",
            hint="Serve a whole chain with --backend transformers, or run the base captioner "
            "elsewhere and point acm:http://host:port/v1 at this server.",
        )
    local = looks_like_path(path)
    if local and not Path(path).expanduser().is_dir():
        raise OptionsError(
            f"No ACM folder at {path!r}.", hint="Pass an ACM or InternVL-chat folder, or a hub id."
        )
    if trust_remote_code:
        folder = Path(path).expanduser() if local else _download_with_code(path)
        config = (
            json.loads((folder / "config.json").read_text(encoding="utf-8"))
            if (folder / "config.json").exists()
            else {}
        )
        if not is_internvl_chat(config):
            raise OptionsError(
                f"--trust-remote-code serves InternVL-chat checkpoints; {path!r} is not one.",
                hint="Our own ACM folders need no remote code: drop the flag.",
            )
        require_safetensors(folder)  # LMDeploy would load a pickle it finds instead
        return ServedModel(
            str(folder), module_map=False, trust_remote_code=True, remote_code=_remote_code(folder)
        )
    folder = Path(
        resolve_model(str(Path(path).expanduser()) if local else path)
    )  # InternVL-chat: converted once
    require_safetensors(folder)
    return ServedModel(str(folder))


def _download_with_code(repo_id: str) -> Path:
    """A hub checkpoint with its Python files (never fetched otherwise), saying which it fetched."""
    from huggingface_hub import snapshot_download

    from ...acm.convert import FETCHED
    from ...errors import ModelNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=[*FETCHED, "*.py"]))
    except Exception as e:
        raise ModelNotFoundError(
            f"Cannot fetch {repo_id!r} ({type(e).__name__}: {e}).",
            hint="Offline, the files must be in the local Hugging Face cache.",
        ) from None
    print(
        f"--trust-remote-code: {repo_id} brings {', '.join(_remote_code(folder)) or 'no Python files'}; LMDeploy "
        f"will run them (from {folder}).",
        file=sys.stderr,
    )
    return folder


def _remote_code(folder: Path) -> tuple[str, ...]:
    """The checkpoint's Python files its `auto_map` names: refused when one is missing."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    named = sorted(
        {
            ref.split(".")[0] + ".py"
            for ref in (config.get("auto_map") or {}).values()
            if isinstance(ref, str)
        }
    )
    missing = [f for f in named if not (folder / f).exists()]
    if missing:
        raise OptionsError(
            f"{folder} lacks {', '.join(missing)}, the checkpoint code --trust-remote-code would run.",
            hint="Pass the hub id (its Python files are fetched), or a folder that holds them; "
            "or drop --trust-remote-code to serve the converted folder with no remote code.",
        )
    return tuple(named)


def server_options(
    spec: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    model_name: str | None = None,
    served: ServedModel | None = None,
) -> dict[str, Any]:
    """`lmdeploy.serve.openai.api_server.serve` arguments (the engine config aside) with our defaults."""
    served = served or acm_source(spec)
    return {
        "model_path": served.model_path,
        "model_name": model_name or "acm",
        "backend": "pytorch",
        "server_name": host,
        "server_port": port,
        "log_level": "WARNING",
        "trust_remote_code": served.trust_remote_code,
        # a list: LMDeploy 0.18 iterates `api_keys`, so a bare string would make each of its
        # characters a valid key on its own
        "api_keys": [api_key] if api_key else None,
        "allow_origins": [],  # no CORS: web pages in a browser on this machine may not call the server
        "disable_fastapi_docs": True,
    }


def engine_options(spec: str, served: ServedModel | None = None) -> dict[str, Any]:
    """PytorchEngineConfig options: our module map, or none for LMDeploy's own InternVL (remote code)."""
    served = served or acm_source(spec)
    return enable_acm() if served.module_map else {}


def launch_config(
    spec: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    model_name: str | None = None,
    max_batch_size: int = 64,
    session_len: int = 8192,
    tp: int = 1,
    max_body_bytes: int = 64 * 2**20,
    media_policy: MediaPolicy = MediaPolicy(),  # noqa: B008 - frozen, so one shared default is safe
    trust_remote_code: bool = False,
    allowed_hosts: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """Everything `serve` hands LMDeploy, as JSON (`anycap serve ... --print-config`): nothing starts.
    The API key is shown as set or not, never itself."""
    served = acm_source(spec, trust_remote_code)
    server = server_options(
        spec, host=host, port=port, api_key=api_key, model_name=model_name, served=served
    )
    server["api_keys"] = ["<set>"] if api_key else None
    engine = {
        **({"custom_module_map": MODULE_MAP_FILE} if served.module_map else {}),
        "max_batch_size": max_batch_size,
        "session_len": session_len,
        "tp": tp,
    }
    return {
        "model_path": served.model_path,
        "served_as": "ACM through anycap's module map"
        if served.module_map
        else "InternVL-chat through LMDeploy's own support, running the checkpoint's code",
        "remote_code": list(served.remote_code),
        "engine": engine,
        "server": server,
        "max_body_bytes": max_body_bytes,
        "allowed_hosts": list(allowed_hosts),
        "media_policy": {
            "allow_remote": media_policy.allow_remote,
            "max_media_bytes": media_policy.max_media_bytes,
            "local_roots": [str(p) for p in media_policy.local_roots],
            "allowed_hosts": list(media_policy.allowed_hosts),
        },
    }


class UvicornBehindBodyLimit:
    """Stands in for the `uvicorn` module inside LMDeploy's api_server: runs its app behind `BodyLimit`
    and the `Host` check both servers make (`access.HostGuard`)."""

    def __init__(
        self,
        max_body_bytes: int,
        keyed: bool = False,
        allowed_hosts: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.max_body_bytes, self.keyed, self.allowed_hosts = max_body_bytes, keyed, allowed_hosts

    def run(self, app: Any, **kwargs: Any) -> None:
        import uvicorn

        from ...access import HostGuard
        from ..app import wrong_host
        from .guards import BodyLimit

        guarded = HostGuard(
            BodyLimit(app, self.max_body_bytes),
            kwargs.get("host", "127.0.0.1"),
            self.allowed_hosts,
            self.keyed,
            wrong_host,
        )
        uvicorn.run(app=guarded, **kwargs)


def serve(
    spec: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    model_name: str | None = None,
    max_batch_size: int = 64,
    session_len: int = 8192,
    tp: int = 1,
    max_body_bytes: int = 64 * 2**20,
    media_policy: MediaPolicy = MediaPolicy(),  # noqa: B008 - frozen, so one shared default is safe
    trust_remote_code: bool = False,
    allowed_hosts: tuple[str, ...] | list[str] = (),
) -> None:
    """Blocks, serving until interrupted."""
    served = acm_source(spec, trust_remote_code)
    options = server_options(
        spec, host=host, port=port, api_key=api_key, model_name=model_name, served=served
    )
    engine = engine_options(spec, served)
    import torch

    if not torch.cuda.is_available():
        raise OptionsError(
            "The LMDeploy backend needs a CUDA GPU; none is visible.", hint=INSTALL_HINT
        )
    from lmdeploy import PytorchEngineConfig
    from lmdeploy.serve.openai import api_server

    from .guards import enforce_media_policy

    enforce_media_policy(media_policy)
    api_server.uvicorn = UvicornBehindBodyLimit(max_body_bytes, api_key is not None, allowed_hosts)
    config = PytorchEngineConfig(
        max_batch_size=max_batch_size, session_len=session_len, tp=tp, **engine
    )
    api_server.serve(backend_config=config, **options)
