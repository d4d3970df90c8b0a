# Two commands for a fresh clone:  make demo  (a real extraction)   make test  (everything CI runs)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch comes from this machine's local wheels, behind pip's configuration: uv installs with it
# (tools/uv_like_pip.py), unpacking each wheel once into .uv-cache/ and hard-linking it into
# .venv and every nox virtualenv
FRAMEWORKS := torch==2.14.1 torchvision==0.29.1 "tensorflow-cpu==2.21.*" "keras==3.15.*"
UV := $(BIN)/python tools/uv_like_pip.py

.PHONY: demo test test-fast bench clean

# the plugins under plugins/ go into .venv too: the suite runs beside a third-party backend,
# and the plugin's tests that need every framework (keras, torch, onnx compared) run here
PLUGINS := $(wildcard plugins/*/pyproject.toml)

$(STAMP): pyproject.toml Makefile $(PLUGINS) tools/uv_like_pip.py
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv
	$(UV) pip install -q -p $(BIN)/python $(FRAMEWORKS) -e ".[all,dev,ray]" \
		$(foreach p,$(PLUGINS),-e "$(dir $(p))[test]")
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/layerscope extract src/layerscope/data/images/chelsea.png --model vgg16 \
		--layers block1_conv1,block5_pool --weights random --seed 0 --out out/chelsea-vgg16.npz --overwrite
	$(BIN)/layerscope layers vgg16 --canonical --filters

# every test, once: nox's framework and plugin sessions record the tests that passed in them
# (build/passed) and its last session, rest (every framework together), runs the others
# (tests/passed_elsewhere.py). Budget: 25 minutes on 2 cores (docs/testing.md). Fixed order;
# nox -s random_order shuffles the whole suite. tools/share_bytecode.py first compiles torch and
# TensorFlow once into .uv-cache, so no session compiles them again.
test: $(STAMP)
	rm -rf build/passed build/crosscheck build/random-weights
	$(BIN)/python tools/share_bytecode.py $(VENV)
	$(BIN)/nox

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:randomly -x

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .nox .uv-cache out
