PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CREDITS_DB ?= data/credits.duckdb
DEMO_USERS ?= 10000
export CREDITS_DB

.PHONY: run test test-long bench lint format clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The demo database gets one local demo key, made when make run builds it (stored hashed;
# the key itself in $(DEMO_KEY), mode 0600). A database make run did not build gets none.
DEMO_KEY = $(CREDITS_DB).demo-key

run: $(STAMP)
	@test -f $(CREDITS_DB) || { $(BIN)/credits demo --db $(CREDITS_DB) --users $(DEMO_USERS) --days 90 \
		&& $(BIN)/credits keys create demo --scopes quote,read,reserve,support --replace \
			--save $(DEMO_KEY) > /dev/null; }
	CREDITS_LOCAL=1 $(BIN)/credits serve --db $(CREDITS_DB) --demo-key $(DEMO_KEY)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2

# The tests marked long and every hypothesis test, at full strength (see tests/conftest.py).
test-long: $(STAMP)
	CREDITS_TEST_PROFILE=long $(BIN)/python -m pytest -n 2 -m "long or hypothesis"

BENCH_DB ?= data/bench-100k.duckdb

bench: $(STAMP)
	$(BIN)/python bench/bench_pricing.py
	$(BIN)/python bench/bench_ledger.py
	$(BIN)/python bench/native_floor.py
	@test -f $(BENCH_DB) || $(BIN)/credits demo --db $(BENCH_DB) --users 100000 --days 90
	$(BIN)/python bench/bench_simulation.py --db $(BENCH_DB)
	$(BIN)/python bench/bench_alerts.py --db $(BENCH_DB)
	$(BIN)/python bench/bench_export.py --db $(BENCH_DB)
	$(BIN)/python bench/bench_pages.py --db $(BENCH_DB)
	$(BIN)/python bench/bench_server.py --db $(BENCH_DB)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV)
