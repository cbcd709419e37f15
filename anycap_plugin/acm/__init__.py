"""ACM, the AnyCap post-processor model, as transformers classes.

Importing this package registers the classes with AutoConfig, AutoModel,
AutoModelForImageTextToText, AutoProcessor and AutoImageProcessor, so `from_pretrained(folder)` works without
`trust_remote_code`.
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageTextToText,
    AutoProcessor,
)

from .configuration_acm import ACMConfig
from .image_processing_acm import ACMImageProcessor
from .modeling_acm import ACMForConditionalGeneration
from .processing_acm import ACMProcessor

AutoConfig.register(ACMConfig.model_type, ACMConfig, exist_ok=True)
AutoModel.register(ACMConfig, ACMForConditionalGeneration, exist_ok=True)
AutoModelForImageTextToText.register(ACMConfig, ACMForConditionalGeneration, exist_ok=True)
AutoProcessor.register(ACMConfig, ACMProcessor, exist_ok=True)
AutoImageProcessor.register(ACMConfig, slow_image_processor_class=ACMImageProcessor, exist_ok=True)

__all__ = ["ACMConfig", "ACMForConditionalGeneration", "ACMImageProcessor", "ACMProcessor"]
