"""Media files and folders of them (recursively, known media extensions), local or in a bucket."""

from __future__ import annotations

import os
from collections.abc import Iterator

from ...media.kinds import MEDIA_EXTENSIONS
from .base import InputFormat, ReadContext, Source, name_of
from .items import WorkItem

_MEDIA_EXTS = set().union(*MEDIA_EXTENSIONS.values())


def is_media_name(location: str) -> bool:
    return os.path.splitext(name_of(location))[1] in _MEDIA_EXTS


class MediaFile(InputFormat):
    """One media file; a file that cannot be read is that item's error."""

    kind = "media"

    def claims(self, location: str, is_dir: bool) -> bool:
        return not is_dir

    def items(self, source: Source, ctx: ReadContext) -> Iterator[WorkItem]:
        yield WorkItem(
            source.location,
            ctx.instruction,
            place=f"file:{source.location}",
            spelled=source.spelled,
        )


class Folder(InputFormat):
    kind = "folder"

    def claims(self, location: str, is_dir: bool) -> bool:
        return is_dir

    def files(self, source: Source, ctx: ReadContext) -> Iterator[str]:
        for location in ctx.storage.files_under(source.location):
            if is_media_name(location) and not ctx.is_run_file(location):
                yield location

    def holds_something(self, source: Source, ctx: ReadContext) -> bool:
        return next(self.files(source, ctx), None) is not None

    def count(self, source: Source, ctx: ReadContext) -> int | None:
        return sum(1 for _ in self.files(source, ctx))

    def items(self, source: Source, ctx: ReadContext) -> Iterator[WorkItem]:
        spelled = source.spelled
        for location in self.files(source, ctx):
            # earlier versions spelled a folder's files from the folder as the user wrote it
            was = (
                spelled + location[len(source.location) :]
                if spelled and spelled != source.location
                else None
            )
            yield WorkItem(location, ctx.instruction, place=f"file:{location}", spelled=was)
