"""ACM at run time: the post-processor in process (`postprocessor`), its loading of folders,
published layouts and hub ids (`loading`, converting through `anycap_plugin.convert`), and the
remote client of a served ACM (`remote`). The model's own files (configuration, modeling,
processing, chat template, prompt) are `anycap_plugin.acm`; the converter is `anycap_plugin.convert`.
"""

from .loading import LoadedACM

__all__ = ["LoadedACM"]
