# syntax=docker/dockerfile:1
# The callhome server: install exactly what uv.lock pins into a virtualenv in one
# stage, run it as a non-root user in a slim image without build tools. Configure
# with CALLHOME_* variables (docs/deploy.md).

FROM python:3.11-slim AS build
# The same uv as the Makefile's UV_VERSION, from PyPI; it never downloads a Python.
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/opt/callhome/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
# Dependencies first, so the layer is reused while only the code changes. The
# workspace member's pyproject is needed to read the lock; only the server's own
# dependencies are installed (no extras: no dev tools, no Locust, no SDK).
COPY pyproject.toml uv.lock README.md ./
COPY client/pyproject.toml client/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package callhome --no-install-workspace
COPY app ./app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package callhome

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/callhome/venv/bin:$PATH \
    CALLHOME_DATA_DIR=/var/lib/callhome \
    CALLHOME_MIGRATIONS_DIR=/opt/callhome/migrations \
    CALLHOME_WORKERS=2
RUN useradd --system --uid 10001 --home-dir /var/lib/callhome --create-home callhome
# Same base image and path as the build stage, so the venv's interpreter links hold.
COPY --from=build /opt/callhome/venv /opt/callhome/venv
WORKDIR /opt/callhome
COPY migrations ./migrations
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# callhome serve reads CALLHOME_WORKERS; migrations are applied by the compose
# "migrate" service (or `callhome db upgrade`) before servers start.
CMD ["callhome", "serve", "--host", "0.0.0.0", "--port", "8000"]
