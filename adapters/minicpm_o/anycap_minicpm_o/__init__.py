"""AnyCap plugin: MiniCPM-o 2.6 (`minicpm-o:FOLDER_OR_HUB_ID`) through its own remote code.

transformers has no native MiniCPM-o class, so loading runs the model repository's Python
code. That happens only when the user opts in: `trust_remote_code=True`, or
`ANYCAP_TRUST_REMOTE_CODE=1`. The published MiniCPM-o 2.6 code targets transformers 4.44.x;
with transformers 5.x it may not import. The dependable route there is to serve MiniCPM-o
with vLLM and use the `openai:` captioner against it (`base_url=http://host:8000/v1`,
`modalities=["image", "video", "audio"]`).
"""

from __future__ import annotations

from typing import Any

from anycap_plugin import Deferred, hookimpl


def _captioner() -> type:
    from .captioner import MiniCPMOCaptioner

    return MiniCPMOCaptioner


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "minicpm-o",
        Deferred(_captioner),
        needs_model=True,
        description="MiniCPM-o 2.6 via its remote code (opt-in: trust_remote_code=True or ANYCAP_TRUST_REMOTE_CODE=1)",
    )
