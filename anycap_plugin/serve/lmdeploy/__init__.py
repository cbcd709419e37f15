"""ACM on LMDeploy's PyTorch engine: GPUs only, extra `[lmdeploy]`, imported lazily.

LMDeploy cannot run our transformers class as is. Four pieces make it serve ACM:
- `module_map.py`: the file LMDeploy's `custom_module_map` option names; it maps our architecture
  (`ACMForConditionalGeneration`, from config.json) to `engine_model.ACMForLMDeploy`;
- `engine_model.py`: that model for the engine: our own encoders and projectors (the same modules
  and weights as the transformers model), LMDeploy's paged-attention build of the language model,
  the input processor that hands image and audio features to it, and the engine config builder;
- `preprocessor.py`: the request side, registered in LMDeploy's `VISION_MODELS` under our
  architecture: images, video frames and audio into the same prompt ids and features as
  `ACMProcessor`;
- `launcher.py`: starts LMDeploy's OpenAI-compatible api_server with them (`anycap serve
  acm:PATH --backend lmdeploy`).
"""

from pathlib import Path

ARCH = "ACMForConditionalGeneration"
MODULE_MAP_FILE = str(Path(__file__).with_name("module_map.py"))
