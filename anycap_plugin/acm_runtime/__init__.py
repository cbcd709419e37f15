"""ACM at run time: the post-processor in process (`postprocessor`), loading (`loading`), what a
spec's folder or hub id resolves to (`resolve`: published InternVL-chat layouts converted once into
the cache), and the remote client of a served ACM (`remote`). The model's own files, and the
converter that writes them, are `anycap_plugin.acm` (configuration, modeling, processing, convert).
"""

from .loading import LoadedACM
from .resolve import preflight_source, resolve_model

__all__ = ["LoadedACM", "preflight_source", "resolve_model"]
