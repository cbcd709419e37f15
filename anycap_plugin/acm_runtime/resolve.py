"""Folders and hub ids -> a folder AnyCap loads: InternVL-chat sources are converted once (by
`anycap_plugin.acm.convert`), then reused.

A hub id (`qishisuren/AnyCapModel`, `OpenGVLab/InternVL2_5-8B`) is fetched with `huggingface_hub`
when online and read from the local Hugging Face cache when offline (`HF_HUB_OFFLINE=1`, or no
network: huggingface_hub falls back to its cache). Only configs, safetensors and tokenizer files are
fetched: never pickles, never Python files. The converted folder lives in AnyCap's cache under the
source's revision (the hub commit, or a fingerprint of a local folder's files), so a new upstream
revision converts again and an unchanged one loads at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ..cache import cache_dir
from ..errors import ModelNotFoundError
from ..model_loading import looks_like_path


def fingerprint(folder: Path) -> str:
    """A local folder's revision: its config and the names, sizes and times of its model files."""
    h = hashlib.sha256(
        (folder / "config.json").read_bytes() if (folder / "config.json").exists() else b""
    )
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name != "config.json":
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _hub_config(repo_id: str) -> dict | None:
    from huggingface_hub import hf_hub_download

    try:
        return json.loads(Path(hf_hub_download(repo_id, "config.json")).read_text(encoding="utf-8"))
    except Exception as e:  # offline without a cached copy, unknown repo, no network
        raise ModelNotFoundError(
            f"Cannot find {repo_id!r} on the hub or in the local Hugging Face cache "
            f"({type(e).__name__}: {e}).",
            hint="Check the id; offline, download it once where there is a network "
            "(huggingface-cli download ID), or pass a local folder.",
        ) from None


def converted_folder(name: str, revision: str) -> Path:
    """Where a source revision's conversion lives: one folder per converter version too."""
    from ..acm.convert import CONVERTER_VERSION  # the converter loads transformers: only here

    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", name.strip("/~.")).strip("-")[-80:] or "model"
    return cache_dir() / "converted" / f"{slug}-{revision[:16]}-c{CONVERTER_VERSION}"


def preflight_source(name_or_path: str | None, **_: object) -> None:
    """What loading checks first, loading nothing: a local path names a folder (a hub id is fetched,
    or found in the cache, when the model loads). The `preflight` of `acm:` and `internvl:`."""
    if (
        name_or_path
        and looks_like_path(name_or_path)
        and not Path(name_or_path).expanduser().is_dir()
    ):
        raise ModelNotFoundError(
            f"No model folder at {str(Path(name_or_path).expanduser())!r}.",
            hint="Pass a folder saved with save_pretrained, an InternVL-chat folder, "
            "or a hub id like 'org/name'.",
        )


def resolve_model(name_or_path: str) -> str:
    """What `from_pretrained` should load for `name_or_path`: the converted folder for an InternVL-chat
    source (converting it first if this revision was never converted), else the input unchanged."""
    from ..acm.convert import download, is_internvl_chat

    preflight_source(name_or_path)
    if looks_like_path(name_or_path):
        folder = Path(name_or_path).expanduser()
        config_file = folder / "config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
        if not is_internvl_chat(config):
            return str(folder)
        return str(
            _converted(folder.resolve(), fingerprint(folder), {"path": str(folder.resolve())})
        )
    config = _hub_config(name_or_path)
    if not is_internvl_chat(config or {}):
        return name_or_path  # transformers fetches native and ACM repositories itself
    folder, revision = download(name_or_path)
    return str(
        _converted(folder, revision, {"id": name_or_path, "revision": revision}, name=name_or_path)
    )


def _converted(src: Path, revision: str, source: dict, name: str | None = None) -> Path:
    from ..acm.convert import convert_internvl_chat

    dst = converted_folder(name or str(src), revision)
    if not (dst / "conversion.json").exists():
        convert_internvl_chat(src, dst, source={**source, "revision": revision})
    return dst
