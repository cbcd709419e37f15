"""Importing evaluation toolkits (VLMEvalKit, lmms-eval) without letting them reconfigure our process.

Below the plugin host: the `vlmeval` captioner (a default plugin) and the harness entries in
`integrations/` both import VLMEvalKit through here.
"""
