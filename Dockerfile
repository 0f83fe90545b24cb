# syntax=docker/dockerfile:1
# Parley's image. Multi-stage: dependencies are resolved from uv.lock in a builder; the runtime
# stage gets Python and the finished virtual environment and nothing else (no compilers, no uv,
# no sources, no tests) and runs as an unprivileged user with a numeric uid, so that Kubernetes'
# runAsNonRoot can check it.
#
# BASE_IMAGE is any Debian-based image that has Python 3.11+ (the official slim image, the
# default) or can install it with apt (a plain debian:bookworm: CI builds on one of those).
#
# Behind a TLS-inspecting proxy, pass its CA bundle as the build secret "ca-bundle"
# (--secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt): the downloads use it, and a
# secret is never stored in a layer.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS python
# Builder and runtime both start here, so the interpreter the virtual environment points at is
# at the same path when the image runs.
# Standard-library parts nothing in Parley imports: CPython's own test suite and test extension
# modules, help()'s topic texts, IDLE, 2to3, ensurepip and Tk. They go in the same layer that
# installs Python (deleting from a base image's layers would save nothing); the official image
# has no test suite already. tests/test_deploy.py runs Parley with these blocked.
ARG STDLIB_LEAVE_OUT="test pydoc_data idlelib lib2to3 ensurepip tkinter turtledemo _ctypes_test _testbuffer \
    _testcapi _testclinic _testimportmultiple _testinternalcapi _testmultiphase _xxtestfuzz xxlimited xxlimited_35"
RUN if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 ca-certificates \
        && rm -rf /var/lib/apt/lists/* \
        && stdlib="$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" \
        && for name in $STDLIB_LEAVE_OUT; do \
            rm -rf "$stdlib/$name" "$stdlib/$name.py" "$stdlib"/__pycache__/"$name".*.pyc "$stdlib"/lib-dynload/"$name".*.so; \
        done; \
    fi

FROM python AS builder
ARG UV_VERSION=0.13.9
# No bytecode from uv: deploy/slim_venv.py compiles what a started Parley imports.
ENV UV_PYTHON_DOWNLOADS=never UV_PYTHON_PREFERENCE=only-system UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=0 UV_NO_CACHE=1
# Locked dependencies that no code path of Parley imports, left out to keep the image small:
# faker and polyfactory (example data, which Litestar makes only with create_examples), grpcio,
# protobuf and opensearch-protobufs (opensearch-py's gRPC transport; Parley speaks HTTP), rich,
# pygments, markdown-it-py, mdurl and rich-click (Litestar's CLI and structlog's pretty
# tracebacks, which Parley turns off anyway: they print local variables),
# pydantic and what only it needs (Litestar loads its pydantic plugin only when pydantic is
# installed; Parley's types are msgspec Structs), pybind11 (lemmagen3 lists the tool it is built
# with as a dependency; its compiled module does not import it) and dnspython (email-validator
# imports it only for deliverability checks; Parley validates an address's syntax, no DNS).
# tests/test_deploy.py runs Parley with these blocked and fails if it starts importing one.
ARG LEAVE_OUT="faker polyfactory grpcio protobuf opensearch-protobufs rich pygments markdown-it-py \
    mdurl rich-click pydantic pydantic-core typing-inspection pybind11 dnspython"
# uv comes from PyPI through pip, in a venv of its own; Debian's Python needs python3-venv for it.
# binutils brings strip for the venv's compiled modules (below); only the builder has it.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi; \
    packages=binutils; \
    python3 -m venv /opt/uv 2>/dev/null || packages="$packages python3-venv"; \
    apt-get update \
    && apt-get install -y --no-install-recommends $packages \
    && python3 -m venv --clear /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
WORKDIR /app
COPY pyproject.toml uv.lock ./
# Dependencies first: this layer is reused until pyproject.toml or uv.lock changes.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export SSL_CERT_FILE=/run/secrets/ca-bundle; fi; \
    /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --no-editable \
        $(printf -- "--no-install-package %s " $LEAVE_OUT)
COPY README.md ./
COPY archive ./archive
COPY api ./api
COPY config ./config
COPY proactive ./proactive
COPY retention ./retention
# The project goes into the venv as a wheel (not editable), so the runtime needs no source tree.
# piccolo's wheel also installs its own test suite as a top-level "tests" package: dropped.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export SSL_CERT_FILE=/run/secrets/ca-bundle; fi; \
    /opt/uv/bin/uv sync --frozen --no-dev --no-editable $(printf -- "--no-install-package %s " $LEAVE_OUT) \
    && rm -rf /app/.venv/lib/python3*/site-packages/tests
# Package data Parley never loads goes (lemmagen3 models and simplemma dictionaries of languages
# archive/wordforms.py does not name, python-stdnum databases no imported module opens), and
# what a started Parley imports is compiled to bytecode; both lists are derived from the
# installed code (deploy/slim_venv.py says how). Compiled modules lose their symbol tables and
# debug information as Debian's packages do (strip --strip-unneeded keeps what loading needs):
# 31 MB of 74, most of it in Cython modules; Python tracebacks are unchanged, only a debugger
# on a native crash sees addresses instead of C function names. Own layer: the dependency
# layers stay cached.
COPY deploy/slim_venv.py /opt/slim_venv.py
RUN site="$(echo /app/.venv/lib/python3*/site-packages)" \
    && /app/.venv/bin/python /opt/slim_venv.py data "$site" \
    && /app/.venv/bin/python /opt/slim_venv.py bytecode "$site" \
    && find "$site" -name '*.so' -exec strip --strip-unneeded {} +

FROM python
RUN useradd --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin parley \
    && mkdir -p /data && chown 10001:10001 /data && chmod 0700 /data
# Owned by root: the service reads its code and cannot change it.
COPY --from=builder /app/.venv /app/.venv
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PARLEY_DATA_DIR=/data \
    PARLEY_HOST=0.0.0.0 \
    PARLEY_PORT=8000 \
    PARLEY_LOG_FORMAT=json
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PARLEY_PORT', '8000'), timeout=2).status != 200)"]
CMD ["parley", "serve"]
