# wheelshade: `make demo` runs the seed demo end to end, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow lint typecheck unit bench fuzz proptest corpus census clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	VENV=$(abspath $(VENV)) bash examples/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests examples

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow'

# Whole real-world stacks with their own test suites (numpy's, scipy's, scikit-learn's,
# pandas beside pandas 3): about 8 minutes on two cores; CI runs it after `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

test: lint typecheck unit

# Speed and memory against the floor (a plain re-zip) and a peer tool; see benchmarks/README.md.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/serve_bench.py

# Longer runs than `make test` does: fuzzing the archive and metadata readers, and the
# rewriter's property tests with many more examples.
fuzz: $(STAMP)
	$(BIN)/python -m pytest -q tests/fuzz --hypothesis-profile=fuzz

proptest: $(STAMP)
	$(BIN)/python -m pytest -q tests/property --hypothesis-profile=long

# The import sweep over the most-downloaded PyPI projects (see docs/corpus.md); not in `make test`.
corpus: $(STAMP)
	$(BIN)/python corpus/run.py

# The platform census over the corpus's compiled projects (see docs/platforms.md); not in
# `make test`. Pins missing wheels first, then shades (and runs what can run here).
census: $(STAMP)
	$(BIN)/python corpus/census.py --pin-only
	$(BIN)/python corpus/census.py

clean:
	rm -rf $(VENV) .demo wheelhouse .cache
