# One task runner for developers and CI. `make demo` and `make test` work on a
# machine with only Python 3.11, pip and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-out

.PHONY: demo test check lint typecheck bench clean browser java

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/backbone demo run --out $(DEMO_DIR) --force

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# the full suite; tests marked xdist_group("demo") share one `demo run` on one worker
# the web door's tests drive Debian's Chromium (Playwright's own download does not
# work here); installed once, by apt, as root or through sudo
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium >/dev/null; \
	  else sudo apt-get install -y -q chromium >/dev/null; fi; }

# the Spark tests start a JVM (Spark 4 needs Java 17 or later); installed once, by apt
java:
	@command -v java >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -q openjdk-17-jre-headless >/dev/null; \
	  else sudo apt-get install -y -q openjdk-17-jre-headless >/dev/null; fi; }

# a module's tests on one worker, so its module fixtures (a served site, a built
# warehouse) are built once: pytest 9.2 names nodes by `_id`, so xdist 3.8's
# loadgroup (which renames `_nodeid`) no longer groups anything
test: lint typecheck browser java
	$(BIN)/python -m pytest -n 2 -q --dist loadscope --durations=12

# the quick lane for daily work: lint, types and every test not marked slow (a
# module's tests on one worker, so its module fixtures are built once)
check: lint typecheck
	$(BIN)/python -m pytest -n 2 -q -m "not slow" --dist loadscope

bench: $(VENV)/.installed
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/linkage_public.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/linkage.py
	$(BIN)/python bench/pprl.py
	$(BIN)/python bench/release.py
	$(BIN)/python bench/policy.py
	$(BIN)/python bench/indicators.py
	$(BIN)/python bench/outcomes.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/spark.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
