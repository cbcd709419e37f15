"""ACM, the AnyCap post-processor model, as transformers classes.

Importing this package registers the classes with AutoConfig, AutoModel,
AutoModelForImageTextToText and AutoProcessor, so `from_pretrained(folder)` works without
`trust_remote_code`.
"""

from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor

from .configuration_acm import ACMConfig
from .modeling_acm import ACMForConditionalGeneration, ACMModalityError
from .processing_acm import ACMProcessor

AutoConfig.register(ACMConfig.model_type, ACMConfig, exist_ok=True)
AutoModel.register(ACMConfig, ACMForConditionalGeneration, exist_ok=True)
AutoModelForImageTextToText.register(ACMConfig, ACMForConditionalGeneration, exist_ok=True)
AutoProcessor.register(ACMConfig, ACMProcessor, exist_ok=True)

__all__ = ["ACMConfig", "ACMForConditionalGeneration", "ACMProcessor", "ACMModalityError"]
