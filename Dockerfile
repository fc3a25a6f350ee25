# One image that runs `serve run serve_config.yaml`. Build: docker build -t sapheneia .
# For NVIDIA GPUs, the same image with CUDA torch:
#   docker build --build-arg TORCH_VARIANT=cu128 -t sapheneia:cuda .
#   docker run --gpus all -e SAPHENEIA_SERVE_CONFIG=serve_config.gpu.yaml -p 8000:8000 ... sapheneia:cuda
# (torch's CUDA wheels carry the CUDA runtime; the host needs the NVIDIA driver and the NVIDIA
# container toolkit.)
# Run:  docker run -p 8000:8000 -e SAPHENEIA_API_KEYS=... -v sapheneia-state:/app/state \
#         -v $PWD/data:/app/data -v $PWD/models:/models sapheneia
# The Ray dashboard and jobs API listen on the container's loopback only, with token auth: see
# README.md, "Security", for how an operator reaches them.
FROM python:3.11-slim

# cpu, or a CUDA build of torch from PyTorch's index (cu126, cu128, ...).
ARG TORCH_VARIANT=cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    SAPHENEIA_DATA_DIR=/app/data \
    SAPHENEIA_MODEL_DIR=/models \
    SAPHENEIA_STATE_DIR=/app/state

WORKDIR /app

# Dependencies first, in their own layer: code changes don't reinstall them. The same steps as
# `make install`: the pinned torch first, CPU by default (TORCH_VARIANT), so that nothing pulls another
# build, then every extra that serve_config.yaml and the README's model table name
# (XReg covariates, Chronos, Prophet, FlowState) and MLflow tracking, then granite-tsfm without its
# torch<2.12 cap.
COPY pyproject.toml README.md ./
RUN python -m pip install --upgrade pip \
 && python -m pip install torch==2.13.0 --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" \
 && mkdir -p sapheneia deployments frontend \
 && touch sapheneia/__init__.py deployments/__init__.py frontend/__init__.py \
 && python -m pip install '.[covariates,chronos,prophet,flowstate,mlflow]' \
 && python -m pip install --no-deps granite-tsfm==0.3.11 \
 && python -m pip uninstall -y sapheneia

# The code. No secret, no .env: keys come from the environment or a mounted key file at run time.
COPY sapheneia ./sapheneia
COPY deployments ./deployments
COPY frontend ./frontend
COPY configs ./configs
COPY scripts ./scripts
COPY serve_config.yaml serve_config.gpu.yaml ./
RUN python -m pip install --no-deps . && mkdir -p /app/data /app/state /models \
 && useradd --create-home sapheneia && chown -R sapheneia /app /models

USER sapheneia
# Weights: bake them in with `RUN sapheneia pull timesfm-2.5` here, or mount them at /models.
# /app/state keeps the generated API key and Ray token across container restarts and upgrades.
VOLUME ["/app/data", "/models", "/app/state"]
# Only the API: the Ray dashboard (8265) stays on the container's loopback.
EXPOSE 8000
# Ready once the API answers and at least one model is ready (a fresh start loads models first).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import json, sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4); sys.exit(0 if json.load(r)['status'] == 'healthy' else 1)"]
# Exec form, and the script ends in `exec serve run`: signals reach Serve, which shuts down cleanly.
CMD ["/app/scripts/docker_start.sh"]
