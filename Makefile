# The README's commands. Each one bootstraps .venv first (torch pinned, installed before the project).
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
VENV := .venv/bin

.PHONY: venv demo test test-shuffled test-all ui mlflow-ui screenshots bench clean

venv:
	@scripts/bootstrap.sh

demo: venv  ## the main job: the whole loop on embedded defaults
	$(VENV)/modelops demo

# Two pytest-xdist workers, each given whole test files (module fixtures train once) and one OpenMP thread, so two
# CPU-bound tests share the 2 cores without oversubscribing them (2 threads per worker spent 1,429 s of CPU time on
# what 1 thread per worker does in 934 s); subprocesses the tests start inherit the setting.
PARALLEL := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/python -m pytest -n 2 --dist loadfile

test: venv  ## the default test suite, two workers, end-to-end files first (CI runs exactly this)
	$(PARALLEL) -q

test-shuffled: venv  ## the default test suite in a random order (pytest-randomly; it prints the seed to rerun)
	$(VENV)/python -m pytest -p randomly

test-all: venv  ## including the slow variants
	$(PARALLEL) -q -m "slow or not slow"

ui: venv  ## Dagster UI on http://127.0.0.1:3000
	$(VENV)/modelops ui

mlflow-ui: venv  ## MLflow UI on http://127.0.0.1:5000
	$(VENV)/modelops mlflow-ui

screenshots: venv  ## retake docs/screenshots/ in headless Chromium from the demo's state (after make demo)
	MODELOPS_UI_STATE=demo MODELOPS_SCREENSHOTS=docs/screenshots $(VENV)/python -m pytest -q modelops_tests/ui

bench: venv  ## benchmarks -> bench/results/*.json
	$(VENV)/python -m bench.run_all

clean:  ## remove generated state (keeps .venv)
	rm -rf .modelops data/raw data/production data/feedback data/quarantine
