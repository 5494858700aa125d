# make test   - create .venv on first use, lint, run every test
# make demo   - run the service once against the MetaDefender Core emulator (FILE=path to scan your own file)
# make bench  - the speed, memory, throughput, scale and overload benchmarks (python -m bench NAME for one)
# make results - write tests/results/ anew: what analysts see for the test samples (docs/design.md)
# make mutation - mutation testing of the pure modules with mutmut, killed mutants per module (docs/testing.md)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export SERVICE_MANIFEST_PATH := $(CURDIR)/service_manifest.yml

.PHONY: test lint demo bench results mutation venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r tests/requirements.txt
	touch $@

lint: venv
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

demo: venv
	$(PY) -m demo $(if $(FILE),--file "$(FILE)") $(DEMO_ARGS)

bench: venv
	$(PY) -m bench all

results: venv
	$(PY) -m tests.result_samples

mutation: venv
	rm -rf mutants
	$(PY) -m mutmut run --max-children 1
	$(PY) -m mutmut results --all true | awk -F'[.:] *' '{total[$$2]++} $$NF ~ /^(killed|timeout)$$/ {killed[$$2]++} \
		END {for (m in total) printf "mdservice/%s.py: %d of %d mutants killed\n", m, killed[m], total[m]}' | sort

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache mutants
