# syntax=docker/dockerfile:1
# trtrepo: build the TensorRT repository of examples/gelu_block in the NGC PyTorch image, serve it from the NGC
# tritonserver image of the SAME release (a TensorRT plan only loads in the TensorRT version that built it).
#
#   docker build --build-arg NGC_RELEASE=25.10 -t trtrepo-gelu .
#   docker run --gpus all --rm -p 8000:8000 -p 8001:8001 trtrepo-gelu
#
# The engine build needs a GPU of the serving architecture: build with the NVIDIA runtime as Docker's default
# runtime ("default-runtime": "nvidia" in /etc/docker/daemon.json), since `docker build` has no --gpus flag.
ARG NGC_RELEASE=25.10

FROM nvcr.io/nvidia/pytorch:${NGC_RELEASE}-py3 AS build
ENV TRTREPO_CACHE_DIR=/cache \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# trtrepo as a user installs it: a wheel (not editable), then a project of its own outside the source tree
# (.ci/wheel_check.sh runs exactly this path in CI). torch, torch-tensorrt, tensorrt and nvcc come with the image;
# trtrepo adds only its light dependencies.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY trtrepo ./trtrepo
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip install --no-cache-dir --no-deps /wheels/trtrepo-*.whl "pyyaml==6.0.3" "click==8.1.8" \
       "tritonclient[grpc]==2.61.0"
WORKDIR /project
COPY plugin_src ./plugin_src
COPY examples/gelu_block ./examples/gelu_block
RUN trtrepo build examples/gelu_block/model.yaml --target tensorrt --out /out/model_repository

FROM nvcr.io/nvidia/tritonserver:${NGC_RELEASE}-py3 AS serve
COPY --from=build /out/model_repository /models
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD ["curl", "-fsS", "localhost:8000/v2/health/ready"]
# launch.sh is generated with the repository: tritonserver --model-repository=/models plus the
# --backend-config=tensorrt,plugins=... flag for every plugin library the plans need.
# A repository without plugin libraries may have no launch.sh: then plain tritonserver serves it.
ENTRYPOINT ["/bin/bash", "-c", "if [ -x /models/launch.sh ]; then exec /models/launch.sh \"$@\"; fi; exec tritonserver --model-repository=/models \"$@\"", "--"]
