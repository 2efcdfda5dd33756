# zeroops — `make run` and `make test` work on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
OUT ?= out

.PHONY: run run-full test test-slow test-live bench serve serve-load lint venv clean devcloud-up devcloud-down help

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

# make run needs zeroops alone; the test tools (openstacksdk, playwright, schemathesis, chaostoolkit ...) come
# with the first target that tests
$(RUN_STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install zeroops with its test extras

run: $(RUN_STAMP)  ## run the standard scenario suite and build its report, results in $(OUT)/
	$(BIN)/zeroops suite scenarios/standard --out $(OUT)
	$(BIN)/zeroops report $(OUT) --format md,html

run-full: $(RUN_STAMP)  ## the standard and the extended (weeks, months) suites and their report, in $(OUT)/
	$(BIN)/zeroops suite scenarios/standard scenarios/extended --out $(OUT)
	$(BIN)/zeroops report $(OUT) --format md,html

lint: $(STAMP)  ## ruff and the import contracts
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint  ## ruff, import contracts and pytest (fast suites; the live ones: make test-live)
	$(BIN)/pytest -q

test-slow: $(STAMP)  ## the slow suites too
	$(BIN)/pytest -q -m 'slow'

test-live: $(STAMP)  ## live tests against the local cloud (make devcloud-up first)
	ZEROOPS_TEST_CLOUD=$${ZEROOPS_TEST_CLOUD:-devcloud} OS_CLIENT_CONFIG_FILE=$${OS_CLIENT_CONFIG_FILE:-$(DEVCLOUD_CLOUDS)} \
		$(BIN)/pytest -q -m openstack

bench: $(STAMP)  ## pytest-benchmark performance cases; figures belong in README
	$(BIN)/pytest -q -m benchmark_suite benchmarks --benchmark-only -p no:cacheprovider -o addopts=''

SCENARIO ?= scenarios/standard/incident-mix.yaml
serve: $(STAMP)  ## the twin of SCENARIO behind the API and dashboard on 127.0.0.1:8080 (docs/serve.md)
	$(BIN)/zeroops serve --scenario $(SCENARIO) --speed 60

serve-load: $(STAMP)  ## load test of zeroops serve: 200 clients for 60 s, p99 and errors (README figures)
	$(BIN)/python benchmarks/serve_load.py --clients 200 --duration 60

clean:  ## remove the virtualenv and outputs
	rm -rf $(VENV) $(OUT) .pytest_cache .benchmarks

DEVCLOUD_CLOUDS := $(CURDIR)/.devcloud/run/etc/openstack/clouds.yaml

devcloud-up:  ## start the local OpenStack (Keystone, Placement, Nova fake driver, Glance) and Prometheus
	devcloud/up.sh
	devcloud/prom_up.sh
	@echo "export ZEROOPS_TEST_CLOUD=devcloud OS_CLIENT_CONFIG_FILE=$(DEVCLOUD_CLOUDS) ZEROOPS_TEST_PROMETHEUS=http://127.0.0.1:9090"

devcloud-down:  ## stop the local OpenStack and Prometheus (data stays in .devcloud/)
	devcloud/prom_down.sh
	devcloud/down.sh
