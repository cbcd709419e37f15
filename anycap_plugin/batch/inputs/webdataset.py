"""WebDataset tar shards: members grouped into samples by `__key__` (the name up to the first dot
of its basename, as `webdataset` splits it); the sample's media member is picked by extension.

Shards are read front to back (local, from a bucket, or from a pipe), one sample in memory at a
time. A truncated shard ends with an item that records the error; a sample with no media member is
that item's error. A member `instruction.txt` (or `.instruction`) gives that sample's instruction.
A sample's place is `shard:SHARD#__key__`; a key that comes back later in the same shard is a
sample of its own.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from ...media.kinds import MEDIA_EXTENSIONS
from ...storage import is_url
from ..keys import Occurrences
from .base import InputFormat, ReadContext, Source, name_of
from .items import WorkItem, bad_item

_NAME = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")
_MEDIA_EXTS = {ext.lstrip(".") for exts in MEDIA_EXTENSIONS.values() for ext in exts}
_INSTRUCTION_EXTS = ("instruction.txt", "instruction")
_HINT = "Re-create the shard, or leave it out; the other shards go on."


_STREAM_BLOCK = 32 << 20  # bytes fetched per range request while streaming a shard from a store
# tarfile's stream reader (`r|`, only for a file that cannot seek) refills its buffer `bufsize`
# bytes at a time (default 10 KB): larger buffers make each refill join more bytes
_TAR_BUFFER = 128 << 10


def sidecar_path(shard: str, directory: Path | None = None) -> Path:
    """`SHARD.captions.jsonl`, what `--sidecars` writes beside a shard (or in `directory`)."""
    name = Path(shard).name
    for ext in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return (directory or Path(shard).parent) / f"{name}.captions.jsonl"


class Shard(InputFormat):
    kind = "shard"

    def claims(self, location: str, is_dir: bool) -> bool:
        name = name_of(location)
        return not is_dir and name.endswith((".tar", ".tar.gz", ".tgz"))

    def holds_something(self, source: Source, ctx: ReadContext) -> bool:
        with _open(source, ctx) as f, tarfile.open(fileobj=f, mode="r|*") as tar:
            return next(iter(tar), None) is not None

    def count(self, source: Source, ctx: ReadContext) -> int | None:
        """How many samples, from the member headers (for a progress bar's total); a shard in a
        bucket is not read twice for it (None)."""
        if is_url(source.location):
            return None
        count, last = 0, None
        with tarfile.open(source.location, "r:*") as tar:
            for member in tar:
                m = _NAME.match(member.name) if member.isfile() else None
                if m is not None and m.group(1) != last:
                    count, last = count + 1, m.group(1)
        return count

    def items(self, source: Source, ctx: ReadContext) -> Iterator[WorkItem]:
        return shard_items(source, ctx)


def _open(source: Source, ctx: ReadContext):  # type: ignore[no-untyped-def]
    if is_url(source.location):
        return ctx.storage.open(
            source.location, "rb", block_size=_STREAM_BLOCK, cache_type="readahead"
        )
    return ctx.storage.open(source.location, "rb")


def _tar(f) -> tarfile.TarFile:  # type: ignore[no-untyped-def]
    """The shard read front to back, one member at a time. A file that can seek (a local file, or a
    store's file read ahead in `_STREAM_BLOCK`s) is read as it is: each member's bytes come straight
    from the file. tarfile's stream mode (`r|`) passes every byte through its own buffer, joined and
    sliced (three copies, about a fifth of the speed): only for a file that cannot seek."""
    if not f.seekable():
        return tarfile.open(fileobj=f, mode="r|*", bufsize=_TAR_BUFFER)
    start = f.tell()
    head = f.read(10)
    f.seek(start)
    return tarfile.open(fileobj=f, mode=_read_mode(head))


def _read_mode(head: bytes) -> Literal["r:", "r:gz", "r:bz2", "r:xz"]:
    """How a shard is compressed, by its first bytes, as tarfile's stream mode tells (`r:*` would
    try each compression in turn, and name every failure when the shard is unreadable)."""
    if head.startswith(b"\x1f\x8b\x08"):
        return "r:gz"
    if head[:3] == b"BZh" and head[4:10] == b"1AY&SY":
        return "r:bz2"
    if head.startswith((b"\x5d\x00\x00\x80", b"\xfd7zXZ")):
        return "r:xz"
    return "r:"


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """A regular member's bytes, read at its offset in one read (what `extractfile` does under a
    buffered reader of its own, a third slower); a sparse member through `extractfile`."""
    if member.sparse is None and tar.fileobj is not None:
        tar.fileobj.seek(member.offset_data)
        return tar.fileobj.read(member.size)
    g = tar.extractfile(member)
    return g.read() if g is not None else b""


def shard_items(source: Source, ctx: ReadContext) -> Iterator[WorkItem]:
    path, instruction = source.location, ctx.instruction
    sample: dict[str, bytes] = {}
    key: str | None = None
    keys = Occurrences()
    try:
        with _open(source, ctx) as f, _tar(f) as tar:
            while (member := tar.next()) is not None:
                # tarfile keeps every header it read (an attribute of its own, untyped): a long
                # shard's would pile up
                tar.members.clear()  # type: ignore[attr-defined]
                if not member.isfile():
                    continue
                m = _NAME.match(member.name)
                if m is None:
                    continue  # a name without an extension is no sample member (webdataset skips it too)
                if key is not None and m.group(1) != key:
                    yield _sample_item(path, key, sample, instruction, keys)
                    sample = {}
                key = m.group(1)
                data = _member_bytes(tar, member)
                if len(data) != member.size:
                    raise tarfile.ReadError("unexpected end of data")
                sample[m.group(2).lower()] = data
    except (tarfile.TarError, EOFError, OSError) as e:
        where = f"{path}#{key}" if key is not None else str(path)
        place = f"shard:{path}#{keys.place(key)[0]}" if key is not None else f"shard:{path}"
        yield bad_item(
            where,
            f"Shard {path} is truncated or unreadable at {key or 'its start'}: {e}.",
            _HINT,
            instruction,
            id=key,
            origin={"shard": str(path), "__key__": key} if key else None,
            place=place,
        )
        return
    if key is not None:
        yield _sample_item(path, key, sample, instruction, keys)


def _sample_item(
    path: str, key: str, sample: dict[str, bytes], instruction: str | None, keys: Occurrences
) -> WorkItem:
    origin = {"shard": path, "__key__": key}
    name, occurrence = keys.place(key)
    place = f"shard:{path}#{name}"
    for ext in _INSTRUCTION_EXTS:
        if ext in sample:
            instruction = sample[ext].decode("utf-8", "replace").strip() or instruction
    media = [ext for ext in sample if ext.rsplit(".", 1)[-1] in _MEDIA_EXTS]
    if not media:
        found = ", ".join(sorted(sample)) or "nothing"
        return bad_item(
            f"{path}#{key}",
            f"Sample {key!r} in {path} has no image, video or audio member (found: {found}).",
            "Name media members by extension: KEY.jpg, KEY.mp4, KEY.wav.",
            instruction,
            id=key,
            origin=origin,
            place=place,
        )
    ext = media[0]
    return WorkItem(
        f"{path}#{key}.{ext}",
        instruction,
        id=key,
        data=sample[ext],
        origin=origin,
        place=place,
        occurrence=occurrence,
    )
