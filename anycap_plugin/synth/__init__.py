"""ACD synthesis (`anycap synth`): training records for ACM from media, on OpenAI-compatible endpoints."""

from .pipeline import SynthConfig, Synthesizer, SynthSummary
from .prompts import PromptSet
from .records import acd_record

__all__ = ["PromptSet", "SynthConfig", "SynthSummary", "Synthesizer", "acd_record"]
