"""LMDeploy's custom module map for ACM (its `custom_module_map` option takes this file's path)."""

CUSTOM_MODULE_MAP = {
    "ACMForConditionalGeneration": "anycap_plugin.serve.lmdeploy.engine_model.ACMForLMDeploy"
}
