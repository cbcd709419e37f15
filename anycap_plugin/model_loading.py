"""Loading local transformers checkpoints: device and dtype, folder checks, safetensors only, and
errors that say whether the folder, the hub id or the files are wrong.

Checkpoint policy lives here once: the HF captioners, the ACM loader, the converter and the trainer
all load through `load_pretrained`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import AnyCapError, CheckpointError, ModelNotFoundError


def choose_device(device: str | None = None) -> str:
    """`cuda` when a GPU is present, else `cpu`, unless the user says otherwise."""
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def choose_dtype(dtype: Any = None, device: str = "cpu") -> Any:
    """bfloat16 on GPUs, float32 on CPU (CPU bf16 matmuls are slow and less exact)."""
    import torch

    if dtype is None:
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise AnyCapError(f"Unknown dtype {dtype!r}.", hint="Use float32, bfloat16 or float16.")
        return getattr(torch, dtype)
    return dtype


def looks_like_path(name: str) -> bool:
    """A local folder rather than a hub id ('org/name')."""
    return (
        Path(name).expanduser().exists() or name.startswith(("/", ".", "~")) or name.count("/") > 1
    )


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
CONVERT_HINT = (
    "Weights are read from safetensors only: pickles are never loaded (one can run code). Convert the folder once, "
    "where you trust the file: `from transformers import AutoModel; AutoModel.from_pretrained(SRC, "
    "use_safetensors=False).save_pretrained(DST)` writes safetensors; or download the safetensors files "
    "the model's publisher provides."
)


def require_safetensors(folder: str | Path, error: type[AnyCapError] | None = None) -> list[Path]:
    """The folder's `*.safetensors` files; a folder without any is refused with `error` (default
    `CheckpointError`), naming the pickles it holds (nothing is unpickled, ever)."""
    path = Path(folder)
    files = sorted(path.glob("*.safetensors"))
    if files:
        return files
    pickles = (
        sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if path.is_dir()
        else []
    )
    raise (error or CheckpointError)(
        f"No safetensors weights in {str(path)!r}"
        + (f" (found {', '.join(pickles)})" if pickles else "")
        + ".",
        hint=CONVERT_HINT,
    )


def check_model_folder(path: Path, config: bool = True, weights: bool = True) -> None:
    """A local model folder as loading needs it: there, with its config.json and safetensors weights."""
    if not path.is_dir():
        raise ModelNotFoundError(
            f"No model folder at {str(path)!r}.",
            hint="Pass a folder saved with save_pretrained, or a hub id like 'org/name'.",
        )
    if config and not (path / "config.json").exists():
        raise CheckpointError(
            f"{str(path)!r} has no config.json.", hint="Is this the model folder itself?"
        )
    if weights:
        require_safetensors(path)


def preflight_model(name: str | None, spec_name: str) -> None:
    """What a local-model captioner checks before loading: a model named, and a local folder that
    holds one (a hub id is fetched, or found in the cache, when the model loads)."""
    if not name:
        raise ModelNotFoundError(
            f"The {spec_name} captioner needs a model folder or hub id.",
            hint=f"Use a spec like '{spec_name}:/path/to/model'.",
        )
    if looks_like_path(name):
        check_model_folder(Path(name).expanduser())


def loads_weights(loader: Any) -> bool:
    """Model classes and AutoModel* read weights; tokenizers, processors and configs do not."""
    from transformers import PreTrainedModel

    return getattr(loader, "__name__", "").startswith("AutoModel") or (
        isinstance(loader, type) and issubclass(loader, PreTrainedModel)
    )


def load_pretrained(loader: Any, name_or_path: str, **kwargs: Any) -> Any:
    """`loader.from_pretrained` with errors that say whether the folder, the id or the files are wrong.

    Weights come from safetensors only: a local folder without them is refused before loading, and
    transformers is told `use_safetensors=True`, so a hub id never falls back to a pickle."""
    path = Path(name_or_path).expanduser()
    local = looks_like_path(name_or_path)
    if local:
        check_model_folder(
            path, config=loader.__name__ != "AutoTokenizer", weights=loads_weights(loader)
        )
    if loads_weights(loader):
        kwargs["use_safetensors"] = True
    try:
        return loader.from_pretrained(str(path) if local else name_or_path, **kwargs)
    except OSError as e:
        if local:
            raise CheckpointError(
                f"Cannot load {str(path)!r}: {e}", hint="Re-download or re-save the model."
            ) from None
        raise ModelNotFoundError(
            f"Cannot load {name_or_path!r}: {e}",
            hint="Check the hub id; offline, pass a local folder instead.",
        ) from None
    except Exception as e:  # safetensors header errors, shape mismatches, bad configs
        raise CheckpointError(
            f"Cannot load {name_or_path!r}: {type(e).__name__}: {e}",
            hint="The checkpoint looks corrupt or incomplete: re-download or re-save it.",
        ) from None
