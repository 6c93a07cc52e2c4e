# The README's two commands: `make run` (whole system locally) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test test-unit lint bench translations design-system package check-package deploy smoke rollback db-bootstrap clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

run: install
	$(BIN)/python -m shared.tools.localdev

test: install
	$(BIN)/pytest

# The unit tests alone (no emulator, no browser, no database server): under half a minute.
test-unit: install
	$(BIN)/pytest tests/unit

lint: install
	$(BIN)/ruff check .

# Benchmarks print figures; they assert nothing: cold start, package sizes, throughput, the pipeline,
# then analytics (every report over 1,000,000 generated tasks), then page weight (apply page, task board).
bench: install
	$(BIN)/python -m tests.bench_apps
	$(BIN)/python -m tests.bench_pipeline
	$(BIN)/python -m tests.bench_analytics
	$(BIN)/python -m tests.bench_pages
	$(BIN)/python -m tests.bench_requests

# Shipping (README, "Deploying"). STAGE is dev or prod; deploy and smoke need AWS credentials.
STAGE ?= dev
package: install
	$(BIN)/python -m shared.tools.deploy package --stage $(STAGE)

check-package: install
	$(BIN)/python -m shared.tools.deploy check-package --stage $(STAGE)

deploy: install
	$(BIN)/python -m shared.tools.deploy deploy --stage $(STAGE)

smoke: install
	$(BIN)/python -m shared.tools.deploy smoke --stage $(STAGE)

# every function's `live` alias back to its previous version, through CodeDeploy (or a running deployment
# stopped, which CodeDeploy rolls back)
rollback: install
	$(BIN)/python -m shared.tools.deploy rollback --stage $(STAGE)

# each app's schema and its own database user, through the RDS Proxy (from a machine in the VPC)
db-bootstrap: install
	$(BIN)/python -m shared.tools.deploy db-bootstrap --stage $(STAGE)

# Extract UI strings, merge them into the catalogues, and compile (edit shared/platform/translations/*/LC_MESSAGES/messages.po in between).
translations: install
	mkdir -p .local
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --ignore-dirs='.venv .local tests' -o .local/messages.pot .
	$(BIN)/pybabel update -i .local/messages.pot -d shared/platform/translations --width 120 --ignore-obsolete
	$(BIN)/pybabel compile -d shared/platform/translations

# The KRDS design system: re-copy its CSS, icons and (subset) font from the pinned npm package krds-uiux
# (shared/tools/design_system.py; needs npm, only here). Run again after changing UI text: new Korean words need glyphs.
design-system: install
	$(BIN)/python -m shared.tools.design_system

clean:
	rm -rf .local .pytest_cache dist
