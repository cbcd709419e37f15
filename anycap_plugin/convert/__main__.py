"""`python -m anycap_plugin.convert SRC DST`: the same as `anycap convert SRC DST`.

For scripts written against AnyCap 0.1's `python -m anycap_plugin.acm.convert` (that module is gone:
the ACM model package no longer depends on its converter). The converter reads everything from the
source's own config.json (0.1's `--config` is no longer needed).
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    from . import convert

    p = argparse.ArgumentParser(description="Convert an InternVL-chat checkpoint (folder or hub id) into an ACM folder.")
    p.add_argument("src")
    p.add_argument("dst")
    args = p.parse_args(argv)
    report = convert(args.src, args.dst)
    print(f"{args.dst}: {report.tensors} tensors, {report.llm}, template {report.template}; audio: {report.audio}")


if __name__ == "__main__":
    main()
