# Two commands for a fresh clone:  make demo  (a real extraction)   make test  (everything CI runs)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch comes from this machine's local wheels (pip finds them; uv/poetry do not)
FRAMEWORKS := torch==2.14.1 torchvision==0.29.1 "tensorflow-cpu==2.21.*" "keras==3.15.*"

.PHONY: demo test test-slow test-fast bench clean

# the plugins under plugins/ go into .venv too: the suite runs beside a third-party backend,
# and the plugin's tests that need every framework (keras, torch, onnx compared) run here
PLUGINS := $(wildcard plugins/*/pyproject.toml)

$(STAMP): pyproject.toml Makefile $(PLUGINS)
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(FRAMEWORKS)
	$(BIN)/python -m pip install -q -e ".[all,dev,ray]"
	$(foreach p,$(PLUGINS),$(BIN)/python -m pip install -q -e "$(dir $(p))[test]";)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/layerscope extract src/layerscope/data/images/chelsea.png --model vgg16 \
		--layers block1_conv1,block5_pool --weights random --seed 0 --out out/chelsea-vgg16.npz --overwrite
	$(BIN)/layerscope layers vgg16 --canonical --filters

# nox first: each one-framework session records the tests that passed in it (build/passed);
# then .venv (every framework and extra) runs only the rest, so each test runs once
# (tests/passed_elsewhere.py), except the rest's slow ones (224 px architectures, the docs'
# examples: ~10 min), which `make test-slow` runs: CI's 90-minute limit. Fixed order;
# nox -s random_order shuffles the whole suite.
test: $(STAMP)
	rm -rf build/passed
	$(BIN)/nox
	LAYERSCOPE_SKIP_PASSED=build/passed $(BIN)/python -m pytest -q -p no:randomly -m "not slow" tests plugins

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -p no:randomly -m slow tests plugins

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:randomly -x

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .nox out
