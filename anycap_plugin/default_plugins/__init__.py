"""The built-in plugins: each module registers through the same hooks as an installed plugin.

They are registered by the host before the entry points (as llm does with its default plugins),
each under its own name. A module here imports nothing heavy: each captioner's class and its
framework load when it is built or when `wrap()` meets one of its objects.
"""

from . import acm, benchmarks, lmdeploy, offline, vlmeval

PLUGINS = (offline, acm, vlmeval, lmdeploy, benchmarks)
