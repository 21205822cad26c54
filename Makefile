# PromoPilot — `make run` serves the open local demo (PROMOPILOT_DEMO=true: no login) on
# http://127.0.0.1:8000, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)

.PHONY: run test lint venv browser bench clean

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$$(command -v uv || echo $(UV)) sync --frozen --all-groups
	touch $@

venv: $(VENV)/.synced

run: venv
	PROMOPILOT_DEMO=true $(VENV)/bin/promopilot run

browser:
	@test -x /usr/bin/chromium || { echo "installing Debian chromium for browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }
	@fc-list 2>/dev/null | grep -qi "noto.*cjk" || { echo "installing CJK fonts (charts, screenshots)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk) >/dev/null || true; }

test: venv browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q

lint: venv
	$(VENV)/bin/ruff check .

# make bench: every goal of docs/benchmarks.md beside its floor, from one run (wrk drives it;
# BENCH_ARGS="--soak 600" for the 10-minute soak, "--only rest" for one part).
bench: venv
	@command -v wrk >/dev/null || { echo "installing Debian wrk for the benchmarks"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >/dev/null; }
	$(PY) bench/peak.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
