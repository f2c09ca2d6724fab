# The two commands of README.md: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test setup lint format bench chaos clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

setup: $(VENV)/.installed
	@$(PY) scripts/init_env.py
	@$(PY) manage.py migrate --noinput
	@$(PY) manage.py collectstatic --noinput --verbosity 0

# Every process under supervisord (deploy/processes.py is the one table of them).
run: setup
	@$(PY) manage.py ensure_demo_admin
	@$(PY) manage.py supervise

# The packages mypy checks (strict for ledger/: pyproject.toml); tests/ is not typed yet.
TYPED := ledger api projections workers webhooks deploy settings tools

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory lint

# mypy's Django plugin loads the settings, which need .env's secrets (scripts/init_env.py
# writes them when missing, as make run does).
lint: $(VENV)/.installed
	@$(PY) scripts/init_env.py
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(TYPED)

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) -m tools.bench $(BENCH_ARGS)

# Money safety under faults, on PostgreSQL + Redis (DATABASE_URL / REDIS_URL servers,
# default 127.0.0.1): `make chaos CHAOS_ARGS="--seed N"` replays a run.
chaos: setup
	$(PY) -m tools.chaos $(CHAOS_ARGS)

clean:
	rm -rf .run
