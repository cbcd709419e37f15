"""Training ACM on ACD-format data (residual-correction SFT)."""

from .data import ACDFormatError, Example, mix, parse_ratio, read_acd
from .trainer import TrainConfig, train

__all__ = ["ACDFormatError", "Example", "mix", "parse_ratio", "read_acd", "TrainConfig", "train"]
