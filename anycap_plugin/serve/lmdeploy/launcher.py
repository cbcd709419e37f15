"""`anycap serve acm:PATH --backend lmdeploy`: LMDeploy's OpenAI-compatible api_server, serving ACM.

LMDeploy decides whether a model takes media from a fixed list of architecture names
(`lmdeploy.archs.check_vl_llm`); `enable_acm()` adds ours to that check, registers the request
side and the engine config builder, and returns the engine options that name our module map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import OptionsError
from . import ARCH, MODULE_MAP_FILE

INSTALL_HINT = ("LMDeploy runs on NVIDIA GPUs: pip install 'anycap-plugin[lmdeploy]' in an environment with "
                "CUDA (LMDeploy pins its own torch).")


def enable_acm() -> dict[str, Any]:
    """Make this process's LMDeploy serve ACM; returns PytorchEngineConfig options."""
    try:
        import lmdeploy.archs as archs
    except ImportError:
        raise OptionsError("LMDeploy is not installed.", hint=INSTALL_HINT) from None
    from . import engine_model, preprocessor  # noqa: F401  (register the config builder and VISION_MODELS entry)

    check = archs.check_vl_llm
    if not getattr(check, "_anycap", False):
        def check_vl_llm(backend: str, config: dict) -> bool:
            return (config.get("architectures") or [None])[0] == ARCH or check(backend, config)

        check_vl_llm._anycap = True  # type: ignore[attr-defined]
        archs.check_vl_llm = check_vl_llm
    return {"custom_module_map": MODULE_MAP_FILE}


def acm_folder(spec: str) -> str:
    name, _, path = spec.partition(":")
    if name != "acm" or not path or not Path(path).is_dir():
        raise OptionsError(f"The LMDeploy backend serves an ACM folder (acm:PATH), not {spec!r}.",
                           hint="Serve a whole chain with --backend transformers, or run the base captioner "
                                "elsewhere and point acm:http://host:port/v1 at this server.")
    return path


def serve(spec: str, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          model_name: str | None = None, max_batch_size: int = 64, session_len: int = 8192, tp: int = 1) -> None:
    """Blocks, serving until interrupted."""
    path = acm_folder(spec)
    options = enable_acm()
    import torch

    if not torch.cuda.is_available():
        raise OptionsError("The LMDeploy backend needs a CUDA GPU; none is visible.", hint=INSTALL_HINT)
    from lmdeploy import PytorchEngineConfig
    from lmdeploy.serve.openai.api_server import serve as api_server

    config = PytorchEngineConfig(max_batch_size=max_batch_size, session_len=session_len, tp=tp, **options)
    api_server(path, model_name=model_name or "acm", backend="pytorch", backend_config=config, server_name=host,
               server_port=port, api_keys=api_key, log_level="WARNING")
