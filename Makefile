# ml-connector: `make run` brings the pipeline up on embedded defaults; `make test` checks it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PACKAGES := shared services/visma-reader services/basware-writer services/webhook-gateway \
            services/invoice-follow-up services/audit-store services/console services/reconciler \
            sandboxes cli
SERVICE_PACKAGES := services/visma-reader/visma_reader services/basware-writer/basware_writer \
                    services/webhook-gateway/webhook_gateway \
                    services/invoice-follow-up/invoice_follow_up services/audit-store/audit_store \
                    services/console/console services/reconciler/reconciler
PKG_FILES := $(foreach p,$(PACKAGES),$(p)/pyproject.toml)

SIZE ?= full
SYNC_ONCE ?=
RESET ?=
PYTEST_ARGS ?=

CHROMIUM := /usr/bin/chromium

.PHONY: install run test lint unit integration bench asyncapi clean browser

install: $(STAMP)

# Everything installs through this one rule, pinned by constraints.txt, so a fresh
# machine and CI end up with the same environment.
$(STAMP): $(PKG_FILES) requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements-dev.txt \
		$(foreach p,$(PACKAGES),-e $(p))
	touch $(STAMP)

run: install
	$(BIN)/mlconnector run $(if $(SYNC_ONCE),--sync-once) $(if $(RESET),--reset) \
		$(if $(WRITERS),--writers $(WRITERS)) $(if $(NO_DEMO),--no-demo-connection)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/mlconnector $(SERVICE_PACKAGES) sandboxes/visma_sandbox sandboxes/basware_sandbox cli/mlconnector_cli tests bench

unit: install
	$(BIN)/pytest tests -m "not integration" $(PYTEST_ARGS)

integration: install
	$(BIN)/pytest tests -m integration $(PYTEST_ARGS)

# The console's browser tests drive Debian's Chromium: installed here when missing and
# root may; otherwise those tests are skipped, saying why.
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
				|| echo "chromium could not be installed: the console's browser tests will be skipped"; \
		else \
			echo "no $(CHROMIUM) and not root: the console's browser tests will be skipped"; \
		fi; \
	fi

# A failed test runs twice more before it counts as failed: integration tests share one
# broker, and a consumer group a test before left behind can stall the next test's readers
# past its guard (a known flake, named in the README). A real failure fails three times.
test: lint browser
	$(BIN)/pytest tests --reruns 2 $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench --size $(SIZE) $(if $(WRITERS),--writers $(WRITERS)) $(if $(PROFILE),--profile)

# The AsyncAPI document of the topics, from the apps; tests/unit/test_asyncapi.py checks it.
asyncapi: install
	$(BIN)/python -m mlconnector_cli.asyncapi docs/asyncapi.yaml

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache bench-results test-artifacts
