# turnout: `make plan` and `make test` work on a fresh clone with only Python 3.11+ installed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
STACK ?= local

.PHONY: plan plan-all test lint format reference up down check-tools bench bench-policy checkov clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

plan: $(INSTALLED)  ## plan the local stack offline into build/plan/local
	$(BIN)/turnout plan $(STACK)

plan-all: $(INSTALLED)
	$(BIN)/turnout plan --all

CHECKOV := .venv-checkov/bin/checkov

$(CHECKOV):  ## checkov gets its own virtualenv: its pins conflict with the project's
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --upgrade pip
	.venv-checkov/bin/python -m pip install --quiet "checkov==3.3.30"

checkov: $(CHECKOV)

test: $(INSTALLED) $(CHECKOV)  ## the whole test suite (what CI runs)
	$(BIN)/python -m pytest

lint: $(INSTALLED)
	$(BIN)/python -m ruff check .

format: $(INSTALLED)
	$(BIN)/python -m ruff format .

reference: $(INSTALLED)  ## regenerate the README's config reference from the typed config
	$(BIN)/python -m turnout.reference README.md
	$(BIN)/python -m turnout.offline.policy_table README.md

bench: $(INSTALLED)
	$(BIN)/python benchmarks/plan_speed.py

bench-policy: $(INSTALLED)  ## the whole policy pack on the largest bundled stack (target: under 1 s)
	$(BIN)/python benchmarks/policy_speed.py

check-tools:
	@scripts/check-tools

up: $(INSTALLED) check-tools  ## create the local environment for real: kind cluster + sample endpoint
	docker build -t turnout-model-echo:0.1.0 apps/model-echo
	$(BIN)/turnout plan $(STACK)
	pulumi stack select --create $(STACK)
	$(BIN)/python policies/tier_config.py $$($(BIN)/python -c "import json;print(json.load(open('build/plan/$(STACK)/inventory.json'))['outputs']['tier'])") environments/Pulumi.$(STACK).yaml > build/plan/$(STACK)/policy-config.json
	pulumi up --stack $(STACK) --policy-pack policies --policy-pack-config build/plan/$(STACK)/policy-config.json

down: check-tools
	pulumi destroy --stack $(STACK)

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
