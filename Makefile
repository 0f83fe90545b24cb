# Parley: `make run` serves on the embedded default; `make test` installs everything and runs the suite.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

.PHONY: run test lint bench install system-deps clean

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

install: .venv/.synced

run: install
	.venv/bin/parley serve

system-deps:
	.ci/system-deps

lint: install
	.venv/bin/ruff check .
	.venv/bin/mypy

test: system-deps install lint
	.ci/test

bench: install
	.venv/bin/python -m bench

clean:
	rm -rf .venv $(TOOLS) var
