# syntax=docker/dockerfile:1
# The callhome server: build wheels in one stage, run them as a non-root user in a
# slim image without build tools. Configure with CALLHOME_* variables (docs/deploy.md).

FROM python:3.11-slim AS build
WORKDIR /src
# Dependencies first, so the layer is reused while only the code changes.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py \
    && pip wheel --no-cache-dir --wheel-dir /wheels . \
    && rm -rf app
COPY app ./app
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CALLHOME_DATA_DIR=/var/lib/callhome \
    CALLHOME_MIGRATIONS_DIR=/opt/callhome/migrations \
    CALLHOME_WORKERS=2
RUN useradd --system --uid 10001 --home-dir /var/lib/callhome --create-home callhome
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /opt/callhome
COPY migrations ./migrations
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# callhome serve reads CALLHOME_WORKERS; migrations are applied by the compose
# "migrate" service (or `callhome db upgrade`) before servers start.
CMD ["callhome", "serve", "--host", "0.0.0.0", "--port", "8000"]
