# Quickstart: `make demo` and `make test`. Both create .venv and install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
RETAIN := $(VENV)/bin/retain
DEMO_DIR ?= demo
DEMO_CUSTOMERS ?= 5000
DEMO_AS_OF ?= 2026-07-01
DEMO_KEY ?= demo-key

.PHONY: install demo test lint bench-features bench-train bench-score bench-api results mlflow-ui clean

install: $(VENV)/.installed

# uv resolves and installs an order of magnitude faster than pip on 2 cores. It installs no
# .pyc files unless asked, and a shell with PYTHONDONTWRITEBYTECODE=1 (common in containers)
# never writes them: every command would then compile what it imports from source on each
# start (score: ~400 modules of MLflow, SQLAlchemy and Alembic, ~1 s of CPU). So bytecode is
# written once here, for the packages and for retain's own folders (an editable install).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e '.[dev]'
	$(PY) -m compileall -q retain features models training decisions analytics serving
	touch $@

demo: install
	$(RETAIN) simulate --customers $(DEMO_CUSTOMERS) --seed 7 --as-of $(DEMO_AS_OF) --out $(DEMO_DIR)/shop
	$(RETAIN) features --transactions $(DEMO_DIR)/shop/transactions.parquet --as-of $(DEMO_AS_OF) \
		--out $(DEMO_DIR)/features.parquet
	$(RETAIN) train --transactions $(DEMO_DIR)/shop/transactions.parquet --as-of $(DEMO_AS_OF) \
		--contacts $(DEMO_DIR)/shop/contacts.parquet
	$(RETAIN) score --transactions $(DEMO_DIR)/shop/transactions.parquet --as-of $(DEMO_AS_OF) \
		--customers $(DEMO_DIR)/shop/customers.parquet --contacts $(DEMO_DIR)/shop/contacts.parquet \
		--out $(DEMO_DIR)/scores.csv
	$(RETAIN) segments --as-of $(DEMO_AS_OF) --out $(DEMO_DIR)/segments.csv
	$(RETAIN) export --goal replenish --excel --out $(DEMO_DIR)/replenish.csv
	@echo "Scores and decisions: $(DEMO_DIR)/scores.csv and the score store retain.db"
	@echo "Marketers' page: http://127.0.0.1:8000/ui (key $(DEMO_KEY))"
	@echo "API: http://127.0.0.1:8000/docs (header X-API-Key: $(DEMO_KEY)); MLflow UI: make mlflow-ui, then http://127.0.0.1:5000"
	RETAIN_API_KEYS='{"$(DEMO_KEY)": ["score", "export", "admin"]}' $(RETAIN) serve --host 127.0.0.1 --port 8000

# The store tests run against a real PostgreSQL server, installed and started by the script;
# the /ui browser test drives Debian's Chromium and the Spark tests Debian's Java, each installed by
# its script.
test: install
	@url=$$(bash scripts/postgres.sh | tail -n 1) || url=""; \
	if [ -z "$$url" ]; then echo "PostgreSQL could not be started: its store tests will be skipped (CI fails instead)"; fi; \
	chromium=$$(bash scripts/chromium.sh | tail -n 1) || chromium=""; \
	if [ -z "$$chromium" ]; then echo "Chromium could not be installed: the browser test will be skipped (CI fails instead)"; fi; \
	java=$$(bash scripts/java.sh | tail -n 1) || java=""; \
	if [ -z "$$java" ]; then echo "Java could not be installed: the Spark tests will be skipped (CI fails instead)"; fi; \
	RETAIN_TEST_POSTGRES_URL="$$url" RETAIN_TEST_CHROMIUM="$$chromium" RETAIN_TEST_JAVA="$$java" \
	JAVA_HOME="$${java:-$$JAVA_HOME}" $(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

bench-features: install
	$(PY) benchmarks/features.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache

results: install
	$(PY) -m retain.training.results --out docs/results.md

mlflow-ui: install
	$(VENV)/bin/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --host 127.0.0.1 --port 5000

bench-train: install
	$(PY) benchmarks/train.py

bench-score: install
	$(PY) benchmarks/score.py

bench-api: install
	$(PY) benchmarks/api.py
