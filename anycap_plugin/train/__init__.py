"""Training ACM on ACD-format data (residual-correction SFT)."""

from .data import Example, mix, parse_ratio, read_acd
from .trainer import TrainConfig, train

__all__ = ["Example", "TrainConfig", "mix", "parse_ratio", "read_acd", "train"]
