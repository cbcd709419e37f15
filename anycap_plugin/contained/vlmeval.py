"""Importing VLMEvalKit without letting it reconfigure the process.

`import vlmeval` (ms-vlmeval 0.0.20) does this to whoever imports it:
- turns off TLS certificate checks for every later HTTPS request (`ssl._create_default_https_context`);
- calls `logging.basicConfig` and logs an ERROR when no `.env` sits beside its package;
- reads that `.env` (site-packages/.env) into `os.environ`;
- turns off autograd for the whole process (`torch.set_grad_enabled(False)` in `vlmeval.vlm`);
- adds global warning filters (UserWarning, DeprecationWarning, FutureWarning ignored) and sets
  environment variables of a few model modules;
- logs API keys in clear (`OpenAIWrapper`: "API Key: ...", and `run.py` logs the judge kwargs).

`import_vlmeval()` imports it once and undoes what can be undone: TLS checks, logging set-up,
grad mode, warning filters and module-set environment variables are restored; the `.env` values
stay (VLMEvalKit's documented way to configure keys, read again by its judges), with a warning
that names the variables it set; and every log record is passed through `redact`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import VLMEvalNotInstalled
from .process_state import restored

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "pip install 'anycap-plugin[vlmeval]' (or, to keep your torch: "
    "pip install --no-deps -r requirements/vlmeval.txt from the AnyCap source tree)."
)

_KEY_PATTERNS = [  # (pattern, replacement): keys we were not told about still look like keys
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), "sk-***"),
    (
        re.compile(
            r"\b((?:api[_ -]?)?key|authorization|token|secret)(['\"]?\s*[:=]\s*['\"]?)(?!\*\*\*)[^\s'\",;}]{6,}",
            re.IGNORECASE,
        ),
        r"\1\2***",
    ),
    (re.compile(r"\b(bearer\s+)(?!\*\*\*)[^\s'\",;}]{6,}", re.IGNORECASE), r"\1***"),
]
_SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
_secrets: set[str] = set()
_lock = threading.Lock()
_module: ModuleType | None = None


def add_secret(value: str | None) -> None:
    """Register a value that must never appear in a log line (a key we pass on)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern, replacement in _KEY_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def add_env_secrets() -> None:
    """Treat the values of key-like environment variables (OPENAI_API_KEY, ...) as secrets."""
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name):
            add_secret(value)


def _install_redacting_record_factory() -> None:
    """Every record's message is redacted as it is made, whichever handler later writes it."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_anycap_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return record

    factory._anycap_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _env_file_keys(vlmeval_init: Path | None) -> set[str]:
    if vlmeval_init is None:
        return set()
    env_file = vlmeval_init.parent.parent / ".env"
    if not env_file.is_file():
        return set()
    try:
        from dotenv import dotenv_values
    except ImportError:
        return set()
    return {k for k, v in dotenv_values(env_file).items() if v}


class _DropDotenvError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Did not detect the .env file" not in record.getMessage()


def import_vlmeval() -> ModuleType:
    """`vlmeval`, imported once with its process-wide side effects contained (see module doc)."""
    global _module
    with _lock:
        if _module is not None:
            return _module
        import importlib.util

        spec = importlib.util.find_spec("vlmeval")
        if spec is None:
            raise VLMEvalNotInstalled("VLMEvalKit is not installed.", hint=INSTALL_HINT)
        _install_redacting_record_factory()
        env_file = Path(spec.origin) if spec.origin else None
        try:
            with restored(
                kept_env=lambda: _env_file_keys(env_file), log_filter=_DropDotenvError()
            ) as changed:
                import vlmeval
                import vlmeval.config
                import vlmeval.dataset
        except ImportError as e:
            raise VLMEvalNotInstalled(
                f"VLMEvalKit could not be imported: {e}.", hint=INSTALL_HINT
            ) from None
        if changed:
            warnings.warn(
                f"VLMEvalKit loaded {len(changed)} variable(s) from the .env beside its package: "
                f"{', '.join(changed)}.",
                stacklevel=2,
            )
        add_env_secrets()
        _module = vlmeval
        return vlmeval
