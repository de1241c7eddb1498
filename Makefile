# Quickstart: `make demo` and `make test`. Both create .venv and install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
RETAIN := $(VENV)/bin/retain
DEMO_DIR ?= demo
DEMO_CUSTOMERS ?= 5000
DEMO_AS_OF ?= 2026-07-01
DEMO_KEY ?= demo-key

.PHONY: install demo test lint bench-features bench-train results mlflow-ui clean

install: $(VENV)/.installed

# uv resolves and installs an order of magnitude faster than pip on 2 cores.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev]'
	touch $@

demo: install
	$(RETAIN) simulate --customers $(DEMO_CUSTOMERS) --seed 7 --as-of $(DEMO_AS_OF) --out $(DEMO_DIR)/shop
	$(RETAIN) features --transactions $(DEMO_DIR)/shop/transactions.parquet --as-of $(DEMO_AS_OF) \
		--out $(DEMO_DIR)/features.parquet
	$(RETAIN) train --transactions $(DEMO_DIR)/shop/transactions.parquet --as-of $(DEMO_AS_OF)
	$(RETAIN) score --transactions $(DEMO_DIR)/shop/transactions.parquet --as-of $(DEMO_AS_OF) \
		--out $(DEMO_DIR)/scores.csv
	@echo "Scores: $(DEMO_DIR)/scores.csv and the score store retain.db"
	@echo "API: http://127.0.0.1:8000/docs (header X-API-Key: $(DEMO_KEY)); MLflow UI: make mlflow-ui, then http://127.0.0.1:5000"
	RETAIN_API_KEYS='{"$(DEMO_KEY)": ["score", "export", "admin"]}' $(RETAIN) serve --host 127.0.0.1 --port 8000

# The store tests run against a real PostgreSQL server, installed and started by the script.
test: install
	@url=$$(bash scripts/postgres.sh | tail -n 1) || url=""; \
	if [ -z "$$url" ]; then echo "PostgreSQL could not be started: its store tests will be skipped (CI fails instead)"; fi; \
	RETAIN_TEST_POSTGRES_URL="$$url" $(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

bench-features: install
	$(PY) benchmarks/features.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache

results: install
	$(PY) -m training.results --out docs/results.md

mlflow-ui: install
	$(VENV)/bin/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --host 127.0.0.1 --port 5000

bench-train: install
	$(PY) benchmarks/train.py
