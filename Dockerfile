# retain API image: multi-stage, slim, non-root, with a health check.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir uv
COPY pyproject.toml README.md ./
COPY features features
COPY models models
COPY training training
COPY serving serving
COPY retain retain
RUN uv venv /opt/venv && uv pip install --python /opt/venv/bin/python --no-cache .

FROM python:3.11-slim
# LightGBM needs the OpenMP runtime.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 retain \
    && mkdir -p /home/retain/mlartifacts && chown retain:retain /home/retain/mlartifacts
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 POLARS_MAX_THREADS=1
USER retain
WORKDIR /home/retain
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["retain", "serve", "--host", "0.0.0.0", "--port", "8000"]
