"""`register()`: AnyCap models and datasets made known to VLMEvalKit, in this process.

VLMEvalKit has no plugin mechanism. Its model registry is the dict `vlmeval.config.supported_VLM`
(name -> constructor) and its dataset registry the list `vlmeval.dataset.DATASET_CLASSES`, which
`build_dataset` searches by each class's `supported_datasets()`. Registration adds to both in
place, so VLMEvalKit's own `run.py` flow, or any code that imports those names, sees our entries.
"""

from __future__ import annotations

import logging
import warnings
from functools import partial
from pathlib import Path
from typing import Any

from ...contained.vlmeval import import_vlmeval

log = logging.getLogger(__name__)

OFFLINE_TSV_DATASETS = ("MIA-Bench",)


def trust_local_tsv(dataset: str) -> bool:
    """Let VLMEvalKit use a local `$LMUData/<dataset>.tsv` whose md5 is not the official one.

    VLMEvalKit re-downloads a TSV whose md5 differs from the release's, which fails offline and
    overwrites a user's own copy. We accept the local file, warning when it is not the release's
    (scores are then not comparable with published ones). Returns whether a local file was found.
    """
    import_vlmeval()
    from vlmeval.dataset import DATASET_CLASSES
    from vlmeval.smp import LMUDataRoot, md5

    path = Path(LMUDataRoot()) / f"{dataset}.tsv"
    if not path.is_file():
        return False
    for cls in DATASET_CLASSES:
        if dataset in getattr(cls, "DATASET_MD5", {}):
            local = md5(str(path))
            if cls.DATASET_MD5[dataset] != local:
                warnings.warn(
                    f"{path} is not the official {dataset} release (md5 {local}); using it as it is. "
                    "Scores on it are not comparable with published ones.",
                    stacklevel=2,
                )
                cls.DATASET_MD5[dataset] = local
    return True


def dataset_classes() -> list[Any]:
    """The VLMEvalKit dataset classes of every registered benchmark (`eval.registry`) that has them."""
    from ...plugins import benchmarks

    return [cls for b in benchmarks().values() if b.vlmeval is not None for cls in b.vlmeval()]


def register(
    models: dict[str, str] | None = None,
    *,
    anycapeval_root: str | Path | None = None,
    vidcapbench_root: str | Path | None = None,
    post_options: dict[str, Any] | None = None,
    concurrent: bool = False,
    **model_options: Any,
) -> list[str]:
    """Add `models` ({VLMEvalKit name: AnyCap spec}) and our datasets to VLMEvalKit's registries.

    Datasets: those of every registered benchmark (`dataset_classes`): AnyCapEval_Image,
    AnyCapEval_Video, AnyCapEval_Audio, VidCapBench-AE, VidCapBench-HE, MIA-Bench (VLMEvalKit's own
    class), and what plugins register.
    `model_options` are per-call options of the base captioner of every registered model, `post_options`
    those of its post-processor; `concurrent` see `AnyCapVLM`. Idempotent.
    Returns the dataset names added.
    """
    import_vlmeval()
    import vlmeval.dataset as vds
    from vlmeval.config import supported_VLM

    from ...eval import vlmeval_datasets as ours
    from .model import AnyCapVLM

    for name, spec in (models or {}).items():
        supported_VLM[name] = partial(
            AnyCapVLM, spec=spec, post_options=post_options, concurrent=concurrent, **model_options
        )
    if anycapeval_root is not None:
        ours.ROOTS["AnyCapEval"] = str(anycapeval_root)
    if vidcapbench_root is not None:
        ours.ROOTS["VidCapBench"] = str(vidcapbench_root)
    names: list[str] = []
    for cls in dataset_classes():
        group = vds.VIDEO_DATASET if getattr(cls, "MODALITY", "") == "VIDEO" else vds.IMAGE_DATASET
        if cls not in vds.DATASET_CLASSES:
            vds.DATASET_CLASSES.insert(0, cls)  # before VLMEvalKit's catch-all custom classes
            group.append(cls)
            vds.SUPPORTED_DATASETS.extend(cls.supported_datasets())
        names.extend(cls.supported_datasets())
    for dataset in OFFLINE_TSV_DATASETS:
        trust_local_tsv(dataset)
    return names
