# turnout: `make plan` and `make test` work on a fresh clone with only Python 3.11+ installed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
STACK ?= local
E2E_STACK ?= e2e
E2E_REFUSED ?= $(E2E_STACK)-refused
E2E_JUDGED ?= $(E2E_STACK)-judged
# The sample model server, as `make up` builds it and `kind load`s it: under kind.local/, a registry
# Knative never looks tags up in (stacks name it in turnout:platform.loadImages).
MODEL_ECHO_IMAGE := kind.local/turnout-model-echo:0.1.0
# The experiment agent of bandit endpoints (apps/experiment-agent), built from the repository root because
# the image holds turnout/experiments; turnout:platform.serving.agentImage names it on kind by default.
AGENT_IMAGE := kind.local/turnout-experiment-agent:0.1.0
# Extra flags for pulumi up/destroy: CI passes --yes --non-interactive.
PULUMI_FLAGS ?=

.PHONY: plan plan-all test lint format reference up down e2e check-tools bench bench-policy bench-bandit bench-judge checkov clean

# pip's own progress (no --quiet): the first run downloads the Pulumi provider SDKs, for minutes.
$(INSTALLED): pyproject.toml
	@printf '\n==> %s\n' "creating $(VENV) and installing turnout with its dev tools (first run only, about 2 minutes)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(INSTALLED)
	@printf '\n==> %s\n' "$(VENV) is ready"

plan: $(INSTALLED)  ## plan the local stack offline into build/plan/local
	$(BIN)/turnout plan $(STACK)

plan-all: $(INSTALLED)
	$(BIN)/turnout plan --all

CHECKOV := .venv-checkov/bin/checkov

$(CHECKOV):  ## checkov gets its own virtualenv: its pins conflict with the project's
	@printf '\n==> %s\n' "creating .venv-checkov and installing checkov (first run only, about a minute)..."
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --upgrade pip
	.venv-checkov/bin/python -m pip install "checkov==3.3.30"

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

bench-bandit: $(INSTALLED)  ## regret of turnout's bandit against Seldon v1's epsilon-greedy (about 15 minutes on 2 cores)
	$(BIN)/python benchmarks/bandit_regret.py

bench-judge: $(INSTALLED)  ## the sequential canary judge against Flagger's threshold analysis, A/B coverage (a few minutes)
	$(BIN)/python benchmarks/canary_judge.py --runs 1000 --good-runs 10000 --ab-runs 200

check-tools:
	@scripts/check-tools

up: $(INSTALLED) check-tools  ## create a kind stack for real (default: local): cluster, platform, sample endpoints
	@printf '\n==> %s\n' "[1/5] docker build: the sample model server as $(MODEL_ECHO_IMAGE), the experiment agent as $(AGENT_IMAGE)"
	docker build -t $(MODEL_ECHO_IMAGE) apps/model-echo
	docker build -f apps/experiment-agent/Dockerfile -t $(AGENT_IMAGE) .
	@printf '\n==> %s\n' "[2/5] turnout plan $(STACK): the offline plan and the policy gate (a mandatory violation stops here)"
	$(BIN)/turnout plan $(STACK)
	@printf '\n==> %s\n' "[3/5] pulumi stack $(STACK) and the policy pack's levels for its tier"
	pulumi stack select --create $(STACK)
	$(BIN)/python policies/tier_config.py $$($(BIN)/python -c "import json;print(json.load(open('build/plan/$(STACK)/inventory.json'))['outputs']['tier'])") environments/Pulumi.$(STACK).yaml > build/plan/$(STACK)/policy-config.json
	@printf '\n==> %s\n' "[4/5] pulumi up $(STACK): kind cluster, image load, Istio, Knative, endpoints (about 10 minutes the first time)"
	pulumi up --stack $(STACK) --policy-pack policies --policy-pack-config build/plan/$(STACK)/policy-config.json $(PULUMI_FLAGS)
	@printf '\n==> %s\n' "[5/5] $(STACK) is up: its endpoints, through the gateway"
	@$(PYTHON) scripts/e2e endpoints $(STACK)

down: check-tools  ## delete a stack made by make up (default: local), its kind cluster included
	@printf '\n==> %s\n' "pulumi destroy $(STACK): endpoints, platform, then the kind cluster"
	pulumi destroy --stack $(STACK) $(PULUMI_FLAGS)

# make up, the checks through the gateway, the refused update and the judged canary's rollback (when up succeeded,
# whatever the checks found), make down (always); without the tools it skips, saying why
e2e:  ## the end-to-end checks on kind (scripts/e2e); exit 0 with the reason when Docker, kind, kubectl or Pulumi is missing
	@if ! scripts/check-tools e2e; then echo "make e2e: skipped (exit 0): install the missing tools above to run it"; exit 0; fi; \
	status=0; \
	if $(MAKE) --no-print-directory up STACK=$(E2E_STACK) PULUMI_FLAGS="--yes $(PULUMI_FLAGS)"; then \
	  $(PYTHON) scripts/e2e check $(E2E_STACK) || status=$$?; \
	  printf '\n==> %s\n' "scripts/e2e refused $(E2E_STACK): an update whose acceptance test fails keeps users where they were"; \
	  $(BIN)/turnout plan $(E2E_REFUSED) \
	    && $(PYTHON) scripts/e2e refused $(E2E_STACK) --config-file environments/Pulumi.$(E2E_REFUSED).yaml \
	      --pulumi-flags="--yes --non-interactive $(PULUMI_FLAGS)" || { failed=$$?; [ $$status -ne 0 ] || status=$$failed; }; \
	  printf '\n==> %s\n' "scripts/e2e judged $(E2E_STACK): a canary failing half its requests is rolled back by the sequential judge"; \
	  $(BIN)/turnout plan $(E2E_JUDGED) \
	    && $(PYTHON) scripts/e2e judged $(E2E_STACK) --config-file environments/Pulumi.$(E2E_JUDGED).yaml \
	      --pulumi-flags="--yes --non-interactive $(PULUMI_FLAGS)" || { failed=$$?; [ $$status -ne 0 ] || status=$$failed; }; \
	else status=1; fi; \
	$(MAKE) --no-print-directory down STACK=$(E2E_STACK) PULUMI_FLAGS="--yes $(PULUMI_FLAGS)" || [ $$status -ne 0 ] || status=1; \
	exit $$status

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
