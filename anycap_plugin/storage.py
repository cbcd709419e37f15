"""One storage layer for local paths and URLs: what batch inputs, media named by manifests and
tables, and run outputs are read from and written to.

Local paths go through the OS; URLs (`s3://`, `gs://`, `az://`/`abfs://`, `hf://`, `https://`, any
fsspec protocol) through fsspec, with credentials and endpoints found the standard way (`AWS_*`
including `AWS_ENDPOINT_URL`, `~/.aws`, `GOOGLE_APPLICATION_CREDENTIALS`, Azure's variables) plus
options given per run (`--storage-option KEY=VALUE`, or `PROTOCOL.KEY=VALUE` for one protocol).

Option values can be secrets: they are never printed, and errors raised here have them blanked.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import StorageError

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
# what fsspec calls each protocol's filesystem; `az` and `abfs` are adlfs, `gs` gcsfs
_PROTOCOL_ALIASES = {"s3a": "s3", "gcs": "gs", "abfss": "abfs", "az": "abfs"}


def is_url(path: str) -> bool:
    """A location read through fsspec (`file://` counts as a local path)."""
    m = _SCHEME.match(path)
    return m is not None and m.group(1).lower() != "file"


def protocol_of(url: str) -> str:
    m = _SCHEME.match(url)
    name = m.group(1).lower() if m else "file"
    return _PROTOCOL_ALIASES.get(name, name)


def local_path(path: str) -> Path:
    return Path(path.removeprefix("file://")).expanduser()


def canonical(path: str) -> str:
    """How a location is named in keys, whatever the working directory or spelling: a local path
    resolved and absolute, a URL as a URL (without a trailing slash)."""
    if is_url(path):
        return path.rstrip("/") if not path.endswith("://") else path
    return str(local_path(path).resolve())


def parent_of(location: str) -> str:
    """The folder (or prefix) holding a file, spelled like the file."""
    if is_url(location):
        return location.rstrip("/").rsplit("/", 1)[0]
    return str(local_path(location).parent)


def join(base: str, relative: str) -> str:
    """`relative` (a path or a URL) against the folder `base`: a URL or an absolute path stays as it is."""
    if is_url(relative):
        return relative
    if relative.startswith("file://") or os.path.isabs(os.path.expanduser(relative)):
        return str(local_path(relative))
    if is_url(base):
        scheme, _, rest = base.partition("://")
        return f"{scheme}://{posixpath.normpath(rest.rstrip('/') + '/' + relative)}"
    return str(local_path(base) / relative)


def parse_options(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`KEY=VALUE` pairs as fsspec options; a value that reads as JSON (true, 3, {"a": 1}) is that value."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise StorageError(
                f"--storage-option {key or pair!r} is not KEY=VALUE.",
                hint="For example --storage-option endpoint_url=http://127.0.0.1:9000, or "
                "s3.anon=true for one protocol.",
            )
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


@dataclass(frozen=True)
class Storage:
    """Opens, lists and writes local paths and URLs alike. `options`: fsspec options for every
    remote protocol (`KEY`) or one (`PROTOCOL.KEY`). Picklable: shipped to Ray read tasks."""

    options: dict[str, Any] = field(default_factory=dict)

    # ---- filesystems ---------------------------------------------------------------
    def filesystem(self, url: str) -> tuple[Any, str]:
        """The fsspec filesystem for a URL, and the path in it."""
        try:
            import fsspec
        except ImportError:  # pragma: no cover - fsspec comes with the install
            raise StorageError(f"Reading {url} needs fsspec.", hint="pip install fsspec") from None
        protocol = protocol_of(url)
        try:
            fs, path = fsspec.core.url_to_fs(url, **self.options_for(protocol))
        except (ImportError, ValueError) as e:
            raise StorageError(
                f"Cannot open {url}: {self.redact(str(e))}",
                hint=_INSTALL_HINTS.get(
                    protocol, "Install the fsspec filesystem for this protocol."
                ),
            ) from None
        return fs, path

    def options_for(self, protocol: str) -> dict[str, Any]:
        out = {k: v for k, v in self.options.items() if "." not in k}
        for key, value in self.options.items():
            name, _, rest = key.partition(".")
            if rest and _PROTOCOL_ALIASES.get(name, name) == protocol:
                out[rest] = value
        return out

    # ---- reading -------------------------------------------------------------------
    def open(self, location: str, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        if not is_url(location):
            return open(local_path(location), mode)
        fs, path = self.filesystem(location)
        return fs.open(path, mode, **kwargs)

    def read_bytes(self, location: str) -> bytes:
        if not is_url(location):
            return local_path(location).read_bytes()
        fs, path = self.filesystem(location)
        return fs.cat_file(path)

    def info(self, location: str) -> dict[str, Any]:
        """`{"type": "file"|"directory", "size": N}`; FileNotFoundError when nothing is there."""
        if not is_url(location):
            p = local_path(location)
            if p.is_dir():
                return {"type": "directory", "size": 0}
            return {"type": "file", "size": p.stat().st_size}
        fs, path = self.filesystem(location)
        return fs.info(path)

    def exists(self, location: str) -> bool:
        try:
            self.info(location)
        except FileNotFoundError:
            return False
        return True

    def isdir(self, location: str) -> bool:
        try:
            return self.info(location)["type"] == "directory"
        except FileNotFoundError:
            return False

    def glob(self, pattern: str) -> list[tuple[str, bool]]:
        """Matches of a glob, sorted, as (location, is a folder), spelled as the pattern spells them."""
        if not is_url(pattern):
            import glob as globbing

            return [
                (m, os.path.isdir(m))
                for m in sorted(globbing.glob(os.path.expanduser(pattern), recursive=True))
            ]
        fs, path = self.filesystem(pattern)
        matches = fs.glob(path, detail=True)
        return sorted(
            (_unstrip(pattern, fs, p), info.get("type") == "directory")
            for p, info in matches.items()
        )

    def files_under(self, folder: str) -> Iterator[str]:
        """Every file under a folder or prefix, recursively, sorted (listed afresh; none: nothing)."""
        if not is_url(folder):
            root = local_path(folder)
            yield from (str(p) for p in sorted(root.rglob("*")) if p.is_file())
            return
        fs, path = self.filesystem(folder)
        fs.invalidate_cache(
            path
        )  # another process (a driver, a lease holder) may have written since
        for p in sorted(fs.find(path)):
            yield _unstrip(folder, fs, p)

    # ---- writing -------------------------------------------------------------------
    def write_bytes(self, location: str, data: bytes) -> None:
        """The whole object at once (an object store's PUT; locally written aside, then renamed)."""
        if not is_url(location):
            p = local_path(location)
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(p.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, p)
            return
        fs, path = self.filesystem(location)
        fs.pipe_file(path, data)

    def create(self, location: str, data: bytes) -> bool:
        """Write `data` only if nothing is at `location` (a conditional write); False when something was."""
        if not is_url(location):
            p = local_path(location)
            p.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return True
        fs, path = self.filesystem(location)
        return _create_remote(fs, path, data)

    def delete(self, location: str) -> None:
        if not is_url(location):
            local_path(location).unlink(missing_ok=True)
            return
        fs, path = self.filesystem(location)
        try:
            fs.rm_file(path)
        except FileNotFoundError:
            pass

    def modified(self, location: str) -> float:
        """When the object was last written, in the store's own clock (seconds since the epoch)."""
        if not is_url(location):
            return local_path(location).stat().st_mtime
        fs, path = self.filesystem(location)
        stamp = fs.modified(path)
        return stamp.timestamp()

    # ---- errors --------------------------------------------------------------------
    def redact(self, text: str) -> str:
        """`text` with every option value blanked (options can hold keys and secrets), and the
        secrets of the standard variables (`AWS_SECRET_ACCESS_KEY`, `AZURE_STORAGE_CONNECTION_STRING`, ...)."""
        secrets = list(_leaves(self.options)) + [
            v for k, v in os.environ.items() if _SECRET_NAME.search(k)
        ]
        for value in sorted(secrets, key=len, reverse=True):
            if len(value) >= 4:
                text = text.replace(value, "***")
        return _SECRET_PARTS.sub(lambda m: m.group(1) + "***", text)

    def describe(self, location: str, error: BaseException) -> str:
        """Why `location` could not be used, in one line, with no secret in it."""
        kind = type(error).__name__
        message = str(error).splitlines()[0] if str(error) else kind
        return self.redact(f"{kind}: {message}")


_SECRET_NAME = re.compile(
    r"SECRET|TOKEN|PASSWORD|CONNECTION_STRING|ACCOUNT_KEY|STORAGE_KEY|SAS|CREDENTIAL", re.IGNORECASE
)
_SECRET_PARTS = re.compile(
    r"((?:AccountKey|SharedAccessSignature|sig|X-Amz-Signature|X-Amz-Credential)=)[^;&\s]+"
)

_current = Storage()


def current() -> Storage:
    """The storage this process reads media through (`use` sets it: the CLI, Ray tasks and actors)."""
    return _current


def use(store: Storage) -> None:
    global _current
    _current = store


_INSTALL_HINTS = {
    "s3": "pip install s3fs",
    "gs": "pip install gcsfs",
    "abfs": "pip install adlfs",
    "hf": "pip install huggingface_hub",
    "http": "pip install aiohttp",
    "https": "pip install aiohttp",
}


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, str):
        yield value


def _unstrip(like: str, fs: Any, path: str) -> str:
    """A path fsspec returns, with the scheme of the URL it came from."""
    if is_url(path):
        return path
    return f"{like.split('://', 1)[0]}://{path.lstrip('/')}"


def _as_list(protocol: Any) -> list[str]:
    return [protocol] if isinstance(protocol, str) else list(protocol)


def _create_remote(fs: Any, path: str, data: bytes) -> bool:
    """A write that fails when the object exists: S3's `If-None-Match: *`, GCS's generation 0,
    Azure's `If-None-Match: *`, else (a store without conditional writes) check, then write."""
    protocol = _as_list(fs.protocol)[0]
    try:
        if protocol in ("s3", "s3a"):
            fs.pipe_file(path, data, mode="create")
            return True
        if protocol in ("gs", "gcs"):
            fs.pipe_file(path, data, mode="create")
            return True
        if protocol in ("abfs", "az", "abfss"):
            fs.pipe_file(path, data, overwrite=False)
            return True
    except FileExistsError:
        return False
    except Exception as e:  # a store's own "precondition failed"
        if _precondition_failed(e):
            return False
        raise
    if fs.exists(path):
        return False
    fs.pipe_file(path, data)
    return True


def _precondition_failed(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}"
    return any(
        s in text for s in ("PreconditionFailed", "412", "ConditionNotMet", "BlobAlreadyExists")
    )
