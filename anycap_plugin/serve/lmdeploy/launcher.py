"""`anycap serve acm:PATH --backend lmdeploy`: LMDeploy's OpenAI-compatible api_server, serving ACM.

LMDeploy decides whether a model takes media from a fixed list of architecture names
(`lmdeploy.archs.check_vl_llm`); `enable_acm()` adds ours to that check, registers the request
side and the engine config builder, and returns the engine options that name our module map.
A published ACM (InternVL-chat layout, folder or hub id) needs none of that: LMDeploy serves the
InternVL-chat architecture natively, with the checkpoint's conversation template.
`serve()` starts the server with `anycap serve`'s safety defaults (guards.py): loopback, one API
key, no CORS, our media policy and body limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...errors import OptionsError
from ..protocol import MediaPolicy
from . import ARCH, MODULE_MAP_FILE

INSTALL_HINT = ("LMDeploy runs on NVIDIA GPUs: pip install 'anycap-plugin[lmdeploy]' in an environment with "
                "CUDA (LMDeploy pins its own torch).")


def enable_acm() -> dict[str, Any]:
    """Make this process's LMDeploy serve ACM; returns PytorchEngineConfig options."""
    try:
        import lmdeploy.archs as archs
    except ImportError:
        raise OptionsError("LMDeploy is not installed.", hint=INSTALL_HINT) from None
    from . import preprocessor  # noqa: F401  (registers the VISION_MODELS entry)
    from .engine_model import ModuleMapPath  # registers the engine config builder, here and in the engine process

    check = archs.check_vl_llm
    if not getattr(check, "_anycap", False):
        def check_vl_llm(backend: str, config: dict) -> bool:
            return (config.get("architectures") or [None])[0] == ARCH or check(backend, config)

        check_vl_llm._anycap = True  # type: ignore[attr-defined]
        archs.check_vl_llm = check_vl_llm
    return {"custom_module_map": ModuleMapPath(MODULE_MAP_FILE)}


def acm_source(spec: str) -> tuple[str, bool]:
    """(folder LMDeploy loads, whether it is InternVL-chat). A published ACM (an InternVL-chat folder or
    hub id) runs on LMDeploy's own InternVL support with the checkpoint's template; an ACM folder of
    ours runs through our module map."""
    from ...convert import download, is_internvl_chat, looks_like_path
    from ...hf import require_safetensors

    name, _, path = spec.partition(":")
    if name != "acm" or not path or path.startswith(("http://", "https://")) or "+" in spec:
        raise OptionsError(f"The LMDeploy backend serves one ACM (acm:PATH or acm:HUB_ID), not {spec!r}.",
                           hint="Serve a whole chain with --backend transformers, or run the base captioner "
                                "elsewhere and point acm:http://host:port/v1 at this server.")
    if looks_like_path(path):
        if not Path(path).expanduser().is_dir():
            raise OptionsError(f"No ACM folder at {path!r}.", hint="Pass an ACM or InternVL-chat folder, or a hub id.")
        folder = Path(path).expanduser()
    else:
        folder = download(path)[0]
    require_safetensors(folder)  # LMDeploy would load a pickle it finds instead
    config = json.loads((folder / "config.json").read_text(encoding="utf-8")) if (folder / "config.json").exists() else {}
    return str(folder), is_internvl_chat(config)


def acm_folder(spec: str) -> str:
    return acm_source(spec)[0]


def server_options(spec: str, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
                   model_name: str | None = None) -> dict[str, Any]:
    """`lmdeploy.serve.openai.api_server.serve` arguments (the engine config aside) with our defaults."""
    return dict(model_path=acm_source(spec)[0], model_name=model_name or "acm", backend="pytorch", server_name=host,
                server_port=port, log_level="WARNING",
                # a list: LMDeploy 0.18 iterates `api_keys`, so a bare string would make each of its
                # characters a valid key on its own
                api_keys=[api_key] if api_key else None,
                allow_origins=[],  # no CORS: web pages in a browser on this machine may not call the server
                disable_fastapi_docs=True)


def engine_options(spec: str) -> dict[str, Any]:
    """PytorchEngineConfig options: none for LMDeploy's native InternVL-chat, our module map otherwise."""
    return {} if acm_source(spec)[1] else enable_acm()


class UvicornBehindBodyLimit:
    """Stands in for the `uvicorn` module inside LMDeploy's api_server: runs its app behind `BodyLimit`."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def run(self, app: Any, **kwargs: Any) -> None:
        import uvicorn

        from .guards import BodyLimit

        uvicorn.run(app=BodyLimit(app, self.max_body_bytes), **kwargs)


def serve(spec: str, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          model_name: str | None = None, max_batch_size: int = 64, session_len: int = 8192, tp: int = 1,
          max_body_bytes: int = 64 * 2**20, media_policy: MediaPolicy = MediaPolicy()) -> None:
    """Blocks, serving until interrupted."""
    options = server_options(spec, host=host, port=port, api_key=api_key, model_name=model_name)
    engine = engine_options(spec)
    import torch

    if not torch.cuda.is_available():
        raise OptionsError("The LMDeploy backend needs a CUDA GPU; none is visible.", hint=INSTALL_HINT)
    from lmdeploy import PytorchEngineConfig
    from lmdeploy.serve.openai import api_server

    from .guards import enforce_media_policy

    enforce_media_policy(media_policy)
    api_server.uvicorn = UvicornBehindBodyLimit(max_body_bytes)
    config = PytorchEngineConfig(max_batch_size=max_batch_size, session_len=session_len, tp=tp, **engine)
    api_server.serve(backend_config=config, **options)
