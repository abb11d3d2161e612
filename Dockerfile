# syntax=docker/dockerfile:1
# The emotions service: slim Python, the serving install only (requirements-serve.txt: no torch),
# a non-root user, the run folder mounted read-only at /model. See README "Deploy".
#
#   docker build -t emotions-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/<run-id>:/model:ro" emotions-serve
#   # or bake a run in:  docker build --target baked --build-context model=runs/<run-id> -t emotions-serve:<run-id> .
#
# The run needs its ONNX export (python -m emotions.export_onnx runs/<run-id>) for the onnx backends;
# baseline runs are served with EMOTIONS_BACKEND=native.
ARG PYTHON_VERSION=3.11

# --- build: a virtual environment with the serving install and the package ------------------------
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements-serve.txt /src/
RUN /opt/venv/bin/pip install --no-cache-dir -r /src/requirements-serve.txt
COPY pyproject.toml README.md /src/
COPY emotions /src/emotions
# the package, then what the service never runs: the libraries' own test suites, pip and setuptools
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps /src \
    && find /opt/venv/lib -type d -name tests -path "*/site-packages/*" -prune -exec rm -rf {} + \
    && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools

# --- runtime: the venv alone, a non-root user -------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --system --gid 10001 emotions \
    && useradd --system --uid 10001 --gid emotions --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin emotions
COPY --from=build /opt/venv /opt/venv
# EMOTIONS_RUN: the run folder (or model folder) to serve; WORKERS: server processes (each holds a copy
# of the model); THREADS: onnxruntime threads per worker.
# HOME=/tmp: the user has no home; onnxruntime keeps a telemetry id under ~/.cache (else it warns at start-up)
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EMOTIONS_RUN=/model \
    EMOTIONS_BACKEND=onnx-int8 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=1 \
    THREADS=2 \
    LOG_LEVEL=info
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "emotions.serving.healthcheck"]
CMD ["sh", "-c", "exec python -m emotions.serve --run \"$EMOTIONS_RUN\" --backend \"$EMOTIONS_BACKEND\" --host \"$HOST\" --port \"$PORT\" --workers \"$WORKERS\" --threads \"$THREADS\" --log-level \"$LOG_LEVEL\""]

# --- baked: a run folder copied into the image (its model/ and export/), read-only for the service ---
# `--build-context model=runs/<run-id>` replaces this empty stage with the run folder.
FROM scratch AS model

FROM runtime AS baked
COPY --from=model model /model/model
COPY --from=model export /model/export

# --- default target: the run folder comes from a read-only mount at /model --------------------------
FROM runtime AS serve
