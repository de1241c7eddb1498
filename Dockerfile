# retain API image: multi-stage, slim, non-root, with a health check.
#   docker build -t retain .
#   docker run -p 8000:8000 -e RETAIN_API_KEYS='{"key": ["score"]}' \
#              -e MLFLOW_TRACKING_URI=http://mlflow:5000 retain
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir uv==0.13.9
# The whole build context: .dockerignore keeps out data, models, stores, tests and the venv, so
# every package pyproject.toml lists is here (a per-package COPY once missed a new one).
COPY . .
# Bytecode at build time: the non-root user cannot write it to /opt/venv, so every start
# would compile MLflow, SQLAlchemy, polars... from source.
RUN uv venv /opt/venv && uv pip install --python /opt/venv/bin/python --no-cache \
    --compile-bytecode .

FROM python:3.11-slim
# LightGBM needs the OpenMP runtime; Debian's security updates move its exact version.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 retain \
    && mkdir -p /home/retain/mlartifacts && chown retain:retain /home/retain/mlartifacts
COPY --from=build /opt/venv /opt/venv
# One worker per core: RETAIN_WORKERS=2 on two cores.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 POLARS_MAX_THREADS=1 \
    RETAIN_WORKERS=1
USER 10001
WORKDIR /home/retain
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"]
CMD ["retain", "serve", "--host", "0.0.0.0", "--port", "8000"]
