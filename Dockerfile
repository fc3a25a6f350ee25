# One image that runs `serve run serve_config.yaml`. Build: docker build -t sapheneia .
# Run:  docker run -p 8000:8000 -p 8265:8265 -e SAPHENEIA_API_KEYS=... \
#         -v $PWD/data:/app/data -v $PWD/models:/models sapheneia
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    SAPHENEIA_DATA_DIR=/app/data \
    SAPHENEIA_MODEL_DIR=/models \
    SAPHENEIA_STATE_DIR=/app/state

WORKDIR /app

# Dependencies first, in their own layer: code changes don't reinstall them. The pinned CPU torch
# comes first so that nothing pulls a CUDA build (use a CUDA base image and torch build for GPUs).
COPY pyproject.toml README.md ./
RUN python -m pip install --upgrade pip \
 && python -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && mkdir -p sapheneia deployments frontend \
 && touch sapheneia/__init__.py deployments/__init__.py frontend/__init__.py \
 && python -m pip install '.[covariates,chronos]' \
 && python -m pip uninstall -y sapheneia

# The code. No secret, no .env: keys come from the environment or a mounted key file at run time.
COPY sapheneia ./sapheneia
COPY deployments ./deployments
COPY frontend ./frontend
COPY configs ./configs
COPY serve_config.yaml ./
RUN python -m pip install --no-deps . && mkdir -p /app/data /app/state /models \
 && useradd --create-home sapheneia && chown -R sapheneia /app /models

USER sapheneia
# Weights: bake them in with `RUN sapheneia pull timesfm-2.5` here, or mount them at /models.
VOLUME ["/app/data", "/models"]
EXPOSE 8000 8265
# In a container the HTTP proxy must listen on all interfaces.
CMD ["sh", "-c", "sed -i 's/host: 127.0.0.1/host: 0.0.0.0/' serve_config.yaml && ray start --head --dashboard-host=0.0.0.0 --disable-usage-stats && sapheneia keys && serve run serve_config.yaml"]
