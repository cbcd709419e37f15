"""Importing lmms-eval's model side without letting it reconfigure the process.

What importing `lmms_eval.api.model` and `lmms_eval.protocol` (lmms-eval 0.7.3) does to whoever
imports it: `lmms_eval.utils` ignores every warning in the process (`warnings.filterwarnings("ignore")`);
`decord`, imported by `lmms_eval.protocol`, appends its folder to `PATH`; `TORCHINDUCTOR_CACHE_DIR`
gets set; and `lmms_eval.models` replaces loguru's sinks with one on stdout at WARNING.
`import_lmms_eval()` imports it once and restores the warning filters and the environment. The
loguru sinks stay as lmms-eval sets them: loguru is lmms-eval's own logger (AnyCap logs through
`logging`), and inside `lmms-eval` runs it has configured them before our model is imported.
"""

from __future__ import annotations

import threading
from types import ModuleType

from ..errors import LmmsEvalNotInstalled
from .process_state import restored

INSTALL_HINT = (
    "pip install 'anycap-plugin[lmms-eval]' (or, to keep your torch: "
    "pip install --no-deps -r requirements/lmms-eval.txt from the AnyCap source tree)."
)

_lock = threading.Lock()
_module: ModuleType | None = None


def import_lmms_eval() -> ModuleType:
    """`lmms_eval`, with the model-side modules our model class needs imported, side effects contained."""
    global _module
    with _lock:
        if _module is not None:
            return _module
        try:
            with restored():
                import lmms_eval
                import lmms_eval.api.instance
                import lmms_eval.api.model
                import lmms_eval.protocol
        except ImportError as e:
            raise LmmsEvalNotInstalled(
                f"lmms-eval could not be imported: {e}.", hint=INSTALL_HINT
            ) from None
        _module = lmms_eval
        return lmms_eval
