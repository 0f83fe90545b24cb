# Parley: `make run` serves on the embedded default; `make test` installs everything and runs the suite.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

.PHONY: run test lint bench install system-deps clean image image-test snippet snippet-tools

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

# The snippet's minifier (terser, pinned in deploy/snippet/package-lock.json), for `make snippet`
# and for the test that the served file is the minified source.
SNIPPET_TOOLS := deploy/snippet/node_modules/.package-lock.json
$(SNIPPET_TOOLS): deploy/snippet/package.json deploy/snippet/package-lock.json
	npm ci --prefix deploy/snippet --silent --no-audit --no-fund
snippet-tools: $(SNIPPET_TOOLS)

# proactive/static/parley.js → parley.min.js, the file /v1/snippet.js serves: run after editing the snippet.
snippet: $(SNIPPET_TOOLS)
	node deploy/snippet/node_modules/terser/bin/terser proactive/static/parley.js -c -m -o proactive/static/parley.min.js

test: system-deps install lint snippet-tools
	.ci/test
	.ci/image-test

# The image, with Docker if its engine answers, else Podman. BASE_IMAGE=… builds on another
# Debian-based image; CA_BUNDLE=FILE passes a TLS-inspecting proxy's CA bundle to the build.
IMAGE ?= parley:latest
comma := ,
ENGINE ?= $(shell if docker info >/dev/null 2>&1; then echo docker; elif command -v podman >/dev/null; then echo podman; fi)
image:
	@test -n "$(ENGINE)" || { echo "make image: neither a Docker engine nor podman is available" >&2; exit 1; }
	$(ENGINE) build $(if $(filter podman,$(ENGINE)),--format docker) --build-arg UV_VERSION=$(UV_VERSION) \
	  $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) $(if $(CA_BUNDLE),--secret id=ca-bundle$(comma)src=$(CA_BUNDLE)) -t $(IMAGE) .

image-test: system-deps
	.ci/image-test

bench: install
	.ci/system-deps bench
	.ci/postgres-start
	.venv/bin/python -m bench

clean:
	rm -rf .venv $(TOOLS) var
