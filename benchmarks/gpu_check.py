"""The GPU check: everything that needs a CUDA GPU, in one call that fits a short lease (under 8 minutes),
written as one JSON summary.

    python benchmarks/gpu_check.py [--output gpu_check.json] [--oracle DIR] [--budget-s 450]
    python benchmarks/gpu_check.py --dry-run      # what it would run, and what is missing for each (CI runs it)

Checks, each with its own share of the budget, skipped with the reason when what it needs is missing:
1. `gpu_tests`: the tests marked `gpu` (`pytest -m gpu`): LMDeploy's api_server and pipeline against
   the transformers ACM (they need LMDeploy).
2. `golden_bf16`: the golden fixture (`../shared/data/internvl_chat_tiny`: InternVL's own outputs) through
   `acm:` and `internvl:` in bf16 on CUDA: prompt ids, pixels, last-position logits (bf16 tolerance
   stated in the output) and the 24 greedy tokens, against the reference's fp32 ones.
3. `serve_lmdeploy`: `benchmarks/serve_lmdeploy.py` at the real 2B size (random weights): LMDeploy
   against the transformers backend when LMDeploy imports, decode tokens/s against the measured
   memory-bandwidth limit; the transformers half alone otherwise.
4. `local_batching_2b`: `benchmarks/local_batching.py --acm-2b`: ACM at the 2B size, batched against
   one item per call.

On the device machine (see the device tool's KINDS.md: Python 3.12, torch and transformers there, no
network), what it lacks travels as wheels and the oracle as a copy, both prepared here by
`make gpu-prepare` (into `.whl/` and `.gpu/`, ignored by git), then, in one `run` call with
`carry: [".whl", ".gpu"]`:

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && \\
    PYTHONPATH=/tmp/site:$PWD:$PWD/adapters/internvl python3 benchmarks/gpu_check.py \\
        --oracle .gpu/internvl_chat_tiny --output $OUT/gpu_check.json

LMDeploy's cp312 wheel (107 MB) is larger than what one call carries (64 MiB), so on that machine the
LMDeploy checks report themselves skipped unless LMDeploy is already there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ORACLE = ROOT.parent / "shared" / "data" / "internvl_chat_tiny"
BF16_LOGITS_TOLERANCE = 0.15  # bf16 keeps ~3 significant digits; these logits are of order 1-5
DEVICE, DTYPE = "cuda", "bfloat16"
NEEDED = {"core": ["torch", "transformers", "safetensors", "tokenizers", "pydantic", "pluggy", "numpy", "PIL"],
          "serving": ["starlette", "uvicorn", "openai"], "lmdeploy": ["lmdeploy"], "tests": ["pytest"]}


def importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def missing(*groups: str) -> list[str]:
    return [f"python module {m}" for g in groups for m in NEEDED[g] if not importable(m)]


def cuda_missing() -> list[str]:
    if not importable("torch"):
        return ["torch"]
    import torch

    return [] if torch.cuda.is_available() else ["a CUDA GPU (torch.cuda.is_available() is False)"]


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "lmdeploy", "pydantic"):
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = None
    if importable("torch"):
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return info


# ---- the checks ------------------------------------------------------------------------------------

def run_script(args: list[str], timeout: float) -> dict[str, Any]:
    """A benchmark script in its own process: its JSON, or its failure."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "benchmarks"),
                                                                      os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "seconds": round(time.perf_counter() - started, 1)}
    seconds = round(time.perf_counter() - started, 1)
    if proc.returncode != 0:
        return {"status": "failed", "seconds": seconds, "stderr_tail": proc.stderr[-3000:]}
    try:
        return {"status": "ok", "seconds": seconds, "result": json.loads(proc.stdout[proc.stdout.index("{"):])}
    except ValueError:
        return {"status": "ok", "seconds": seconds, "stdout_tail": proc.stdout[-3000:]}


def gpu_tests(timeout: float, oracle: Path) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        files = sorted(str(f.relative_to(ROOT)) for f in (ROOT / "tests").glob("test_*.py")
                       if "mark.gpu" in f.read_text(encoding="utf-8"))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-rs", *files],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "seconds": round(time.perf_counter() - started, 1)}
    tail = proc.stdout.strip().splitlines()[-12:]
    return {"status": "ok" if proc.returncode in (0, 5) else "failed", "exit_code": proc.returncode,
            "seconds": round(time.perf_counter() - started, 1), "summary": tail}


def golden_bf16(timeout: float, oracle: Path) -> dict[str, Any]:
    """The golden cases through `acm:` and `internvl:` in bf16 on CUDA."""
    import tempfile

    import torch
    from PIL import Image
    from safetensors.torch import load_file

    from anycap_plugin import Caption, Media, get_post_processor
    from anycap_plugin.acm.prompt import parse_question
    from anycap_plugin.acm.convert import convert_internvl_chat

    out: dict[str, Any] = {"status": "ok", "logits_tolerance": BF16_LOGITS_TOLERANCE, "cases": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "acm"
        convert_internvl_chat(oracle / "checkpoint", folder)
        acm = get_post_processor(f"acm:{folder}", device=DEVICE, dtype=DTYPE)
        try:
            from anycap_internvl.captioner import InternVLChatCaptioner

            internvl = InternVLChatCaptioner(str(folder), device=DEVICE, dtype=DTYPE)
        except ImportError:
            internvl = None
            out["internvl"] = "skipped: anycap_internvl not importable (put adapters/internvl on PYTHONPATH)"
        for case in ("case_image", "case_video"):
            meta = json.loads((oracle / "golden" / f"{case}.json").read_text())
            ids = json.loads(meta["input_ids"]) if isinstance(meta["input_ids"], str) else meta["input_ids"]
            tensors = load_file(str(oracle / "golden" / f"{case}.safetensors"))
            media = (Media.load(oracle / "media" / "image.png") if case == "case_image" else
                     Media.from_frames([Image.open(oracle / "media" / f"frame{i}.png") for i in range(1, 5)]))
            asked = parse_question(meta["question"])
            batch = acm.processor([media], [asked.instruction], [asked.caption], num_frames=4)
            on_device = batch.to(DEVICE, dtype=getattr(torch, DTYPE))
            with torch.no_grad():
                logits = acm.model(**on_device).logits[0, -1].float().cpu()
                generated = acm.model.generate(**on_device, max_new_tokens=24, do_sample=False,
                                               eos_token_id=meta["eos_token_id"])
            prompt_len = batch["input_ids"].shape[1]  # ACM generates from embeddings: only new tokens come back
            new_ids = generated[0, prompt_len:].tolist() if generated.shape[1] > prompt_len else generated[0].tolist()
            result = {"input_ids_equal": batch["input_ids"][0].tolist() == ids,
                      "pixels_max_abs_diff": float((batch["pixel_values"].float().cpu()
                                                    - tensors["pixel_values"]).abs().max()),
                      "last_logits_max_abs_diff": float((logits - tensors["last_logits"]).abs().max()),
                      "argmax_equal": int(logits.argmax()) == int(tensors["last_logits"].argmax())}
            refined = acm.refine(media, asked.instruction, Caption(text=asked.caption), max_new_tokens=24,
                                 num_frames=4, check_constraints=False)
            result["acm_greedy_text_equal"] = refined.text == meta["greedy_text"]
            result["greedy_tokens_equal_of_24"] = sum(a == b for a, b in zip(new_ids, meta["greedy_new_ids"]))
            if internvl is not None:
                question = meta["question"].split("<image>\n")[-1]
                text = internvl.caption(media, question, max_new_tokens=24, num_frames=4).text
                result["internvl_greedy_text_equal"] = text == meta["greedy_text"]
            result["within_tolerance"] = (result["input_ids_equal"] and
                                          result["last_logits_max_abs_diff"] <= BF16_LOGITS_TOLERANCE)
            out["cases"][case] = result
            if time.perf_counter() - started > timeout:
                out["status"] = "timeout"
                break
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def serve_lmdeploy(timeout: float, oracle: Path) -> dict[str, Any]:
    return run_script(["benchmarks/serve_lmdeploy.py", "--requests", "32", "--max-tokens", "64"], timeout)


def local_batching_2b(timeout: float, oracle: Path) -> dict[str, Any]:
    return run_script(["benchmarks/local_batching.py", "--acm-2b", "--repeats", "1"], timeout)


CHECKS: list[tuple[str, Callable[[float, Path], dict[str, Any]], float, tuple[str, ...], bool]] = [
    # name, function, share of the budget, module groups needed, needs the oracle
    ("golden_bf16", golden_bf16, 0.15, ("core",), True),
    ("gpu_tests", gpu_tests, 0.25, ("core", "tests", "lmdeploy"), False),
    ("serve_lmdeploy", serve_lmdeploy, 0.35, ("core", "serving"), False),
    ("local_batching_2b", local_batching_2b, 0.25, ("core",), False),
]


def plan(oracle: Path) -> list[dict[str, Any]]:
    """Each check, whether it can run here, and what it lacks (LMDeploy only narrows `serve_lmdeploy`)."""
    rows = []
    for name, _, share, groups, needs_oracle in CHECKS:
        lacking = cuda_missing() + missing(*groups)
        if needs_oracle and not (oracle / "golden").is_dir():
            lacking.append(f"the golden fixture at {oracle} (--oracle; `make gpu-prepare` copies it to .gpu/)")
        note = None
        if name == "serve_lmdeploy" and not importable("lmdeploy"):
            note = "LMDeploy is not importable: only the transformers backend is measured"
        rows.append({"check": name, "would_run": not lacking, "missing": lacking, "budget_share": share,
                     **({"note": note} if note else {})})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="print the plan and what is missing; run nothing")
    p.add_argument("--output", type=Path, help="also write the JSON summary here")
    p.add_argument("--oracle", type=Path, default=DEFAULT_ORACLE, help="the internvl_chat_tiny folder")
    p.add_argument("--budget-s", type=float, default=450.0, help="all checks together (the lease's limit is 8 min)")
    args = p.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "adapters" / "internvl")]
    summary: dict[str, Any] = {"benchmark": "gpu_check", "environment": environment(), "plan": plan(args.oracle)}
    if not args.dry_run:
        started = time.perf_counter()
        for (name, check, share, _, _), row in zip(CHECKS, summary["plan"]):
            if not row["would_run"]:
                summary[name] = {"status": "skipped", "why": row["missing"]}
                continue
            left = args.budget_s - (time.perf_counter() - started)
            try:
                summary[name] = check(max(30.0, min(share * args.budget_s, left)), args.oracle)
            except Exception as e:  # one check failing must not lose the others' figures
                summary[name] = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
        summary["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(summary, indent=2)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
