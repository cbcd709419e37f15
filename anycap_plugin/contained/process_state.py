"""Importing an evaluation toolkit without letting it reconfigure our process.

VLMEvalKit and lmms-eval change process-wide state as they are imported (environment variables,
global warning filters, root logging handlers, autograd, TLS checks). `restored` takes a snapshot
and puts it back after the import; `kept_env` names variables whose new values stay (VLMEvalKit's
`.env`, its documented way to configure keys). It returns the variables it kept, so the caller can
say which.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def restored(
    kept_env: Callable[[], set[str]] = set, log_filter: logging.Filter | None = None
) -> Iterator[list[str]]:
    """Run the block (an import); afterwards restore what it changed. Yields a list that is filled,
    on exit, with the environment variables that were changed and kept."""
    kept: list[str] = []
    env_before = dict(os.environ)
    https_context = ssl._create_default_https_context
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    if log_filter is not None:
        root.addFilter(log_filter)
    torch = sys.modules.get(
        "torch"
    )  # not imported here: importing torch adds warning filters of its own
    grad = torch.is_grad_enabled() if torch is not None else True
    try:
        with warnings.catch_warnings():  # restores the global filter list afterwards
            yield kept
    finally:
        if log_filter is not None:
            root.removeFilter(log_filter)
        ssl._create_default_https_context = https_context
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
        if "torch" in sys.modules:
            sys.modules["torch"].set_grad_enabled(grad)
        keep = kept_env()
        for key in set(os.environ) | set(env_before):
            if os.environ.get(key) == env_before.get(key):
                continue
            if key in keep:
                kept.append(key)
            elif key in env_before:
                os.environ[key] = env_before[key]
            else:
                del os.environ[key]
        kept.sort()
