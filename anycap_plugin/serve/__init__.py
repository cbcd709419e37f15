"""`anycap serve`: a captioner or ACM behind the OpenAI chat-completions protocol.

The request format is in `protocol`; dynamic batching in `batching`; the HTTP app in `app`.
Needs the `serve` extra (Starlette, uvicorn).
"""

from .app import ServeConfig, create_app, running, serve
from .protocol import MediaPolicy, parse_request

__all__ = ["MediaPolicy", "ServeConfig", "create_app", "parse_request", "running", "serve"]
