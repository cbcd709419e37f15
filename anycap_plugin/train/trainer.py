"""Residual-correction SFT of ACM with the Hugging Face `Trainer`.

Loss falls only on the answer tokens; the vision and audio encoders are frozen; projectors and
the language model train. Because this is the stock `Trainer`, `torchrun` / `accelerate launch`
give DDP and FSDP across GPUs and nodes, checkpoints resume with `resume=True`, and bf16 is
used on GPUs. A validation split reports its loss before and after training.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import AnyCapError, MediaError
from ..media import Media
from .data import Example, mix, parse_ratio, read_acd


@dataclass
class TrainConfig:
    model: str
    data: list[str]
    output_dir: str
    ratio: str = "2:2:1"
    max_steps: int = 100
    batch_size: int = 8
    learning_rate: float = 2e-5
    val_fraction: float = 0.1
    max_length: int = 1024
    media_root: str | None = None
    missing_media: Literal["text", "skip", "error"] = "error"
    on_error: Literal["skip", "raise"] = "skip"
    eval_steps: int = 50
    save_steps: int = 50
    seed: int = 0
    resume: bool = False
    max_examples: int | None = None
    group_by_length: bool = True  # batches of similar length: little padding, plain attention
    packed: bool = (
        False  # padding-free rows; pays off only with varlen attention (flash-attn on GPUs)
    )
    answer_logits_only: bool = (
        True  # vocabulary projection on answer tokens only: same loss, less compute
    )
    extra_args: dict[str, Any] = field(default_factory=dict)


class ExampleDataset:
    def __init__(self, examples: list[Example]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Example:
        return self.examples[i]

    @property
    def lengths(self) -> list[int]:
        """Text length of each example: enough to group examples of similar token length."""
        return [len(e.instruction) + len(e.existing or "") + len(e.target) for e in self.examples]


def _trainer_class() -> Any:
    from transformers import Trainer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class ACMTrainer(Trainer):
        """Trainer whose sampler can group examples by length (our dataset holds Examples, not tensors),
        and whose loss projects only the answer tokens onto the vocabulary."""

        group_by_length = True
        answer_logits_only = True

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any
        ) -> Any:
            if self.answer_logits_only:
                inputs = {**inputs, "answer_logits_only": True}
            return super().compute_loss(model, inputs, *args, **kwargs)

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            if self.group_by_length and isinstance(dataset, ExampleDataset):
                return LengthGroupedSampler(
                    self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps,
                    lengths=dataset.lengths,
                )
            return super()._get_train_sampler(train_dataset)

    return ACMTrainer


class ACMCollator:
    """Examples -> a right-padded training batch; media are decoded here, in the loader."""

    def __init__(
        self,
        processor: Any,
        media_root: str | None,
        missing: str,
        max_length: int,
        packed: bool = False,
    ) -> None:
        self.processor, self.media_root, self.missing, self.max_length = (
            processor,
            media_root,
            missing,
            max_length,
        )
        self.packed = packed

    def _media(self, ex: Example) -> Media | None:
        if self.media_root is None or ex.media is None:
            return None
        try:
            return Media.load(Path(self.media_root) / ex.media)
        except MediaError:
            if self.missing == "error":
                raise
            return None  # "text": learn from the text alone

    def __call__(self, batch: list[Example]) -> Any:
        return self.processor(
            [self._media(e) for e in batch],
            [e.instruction for e in batch],
            [e.existing for e in batch],
            targets=[e.target for e in batch],
            max_length=self.max_length,
            packed=self.packed,
        )


def _present(ex: Example, root: str | None) -> bool:
    return root is not None and ex.media is not None and (Path(root) / ex.media).exists()


def load_examples(cfg: TrainConfig) -> tuple[list[Example], list[Example], list[str]]:
    examples, problems = read_acd(cfg.data, on_error=cfg.on_error)
    if cfg.missing_media != "text":
        absent = [e for e in examples if not _present(e, cfg.media_root)]
        if absent and cfg.missing_media == "error":
            raise AnyCapError(
                f"{len(absent)} of {len(examples)} records have no media file under "
                f"{cfg.media_root!r} (first: {absent[0].media}).",
                hint="Pass --media-root, or --missing-media skip|text to drop them or train on text.",
            )
        examples = [e for e in examples if _present(e, cfg.media_root)]
    examples = mix(examples, parse_ratio(cfg.ratio), seed=cfg.seed)
    if cfg.max_examples is not None:
        examples = examples[: cfg.max_examples]
    if len(examples) < 2:
        raise AnyCapError("Too few training examples after filtering and mixing.")
    rng = random.Random(cfg.seed)
    rng.shuffle(examples)
    n_val = max(1, int(len(examples) * cfg.val_fraction))
    return examples[n_val:], examples[:n_val], problems


def freeze_encoders(model: Any) -> dict[str, int]:
    """Encoders frozen; projectors and language model trainable. Returns the parameter counts."""
    for module in (model.vision_model, model.audio_encoder):
        if module is not None:
            module.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "trainable": trainable,
        "frozen": sum(p.numel() for p in model.parameters()) - trainable,
    }


def _resume_point(cfg: TrainConfig) -> str | None:
    """The newest checkpoint to resume from, when its weights are safetensors (refused otherwise).

    Its optimizer, scheduler and RNG states are `.pt` files, the only format the Trainer writes
    for them; transformers reads them with `torch.load(weights_only=True)`, which builds tensors
    and plain containers and runs no code."""
    from transformers.trainer_utils import get_last_checkpoint

    from ..model_loading import require_safetensors

    if not cfg.resume or not Path(cfg.output_dir).is_dir():
        return None
    last = get_last_checkpoint(cfg.output_dir)
    if last is not None:
        require_safetensors(last)
    return last


def train(cfg: TrainConfig) -> dict[str, Any]:
    import torch
    from transformers import AutoModel, AutoProcessor, TrainingArguments

    from .. import acm  # noqa: F401  (registers the Auto classes)
    from ..acm.processing_acm import PROCESSOR_KWARGS, quiet_feature_extractor
    from ..model_loading import load_pretrained

    train_set, val_set, problems = load_examples(cfg)
    with quiet_feature_extractor():
        processor = load_pretrained(AutoProcessor, cfg.model, **PROCESSOR_KWARGS)
    model = load_pretrained(AutoModel, cfg.model)
    params = freeze_encoders(model)
    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=cfg.output_dir,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=0,
        lr_scheduler_type="constant",
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        logging_steps=max(1, cfg.eval_steps // 5),
        report_to=[],
        remove_unused_columns=False,
        bf16=cuda,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        seed=cfg.seed,
        disable_tqdm=not sys.stderr.isatty(),
        **cfg.extra_args,
    )
    trainer_cls = _trainer_class()
    trainer_cls.group_by_length = cfg.group_by_length
    trainer_cls.answer_logits_only = cfg.answer_logits_only
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=ExampleDataset(train_set),
        eval_dataset=ExampleDataset(val_set),
        data_collator=ACMCollator(
            processor, cfg.media_root, cfg.missing_media, cfg.max_length, packed=cfg.packed
        ),
    )
    before = trainer.evaluate()["eval_loss"]
    result = trainer.train(resume_from_checkpoint=_resume_point(cfg))
    stats = result.metrics
    after = trainer.evaluate()["eval_loss"]
    final = Path(cfg.output_dir) / "final"
    trainer.save_model(str(final))
    processor.save_pretrained(str(final))
    return {
        "train_examples": len(train_set),
        "val_examples": len(val_set),
        "skipped_lines": len(problems),
        "problems": problems[:20],
        "val_loss_before": before,
        "val_loss_after": after,
        "val_loss_drop": 1 - after / before,
        "steps": result.global_step,
        "parameters": params,
        "train_seconds": stats.get("train_runtime"),
        "packed": cfg.packed,
        "group_by_length": cfg.group_by_length,
        "answer_logits_only": cfg.answer_logits_only,
        "model": str(final),
    }
