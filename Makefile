# One entry point for a newcomer: `make up`, `make test`, `make down`.
# Every download happens in `install`; everything after it works offline.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
BUF     := .tools/node_modules/.bin/buf
STAMP   := $(VENV)/.installed
GAPI    := .build/protos
# The web player: npm packages (make install) and its built bundle, which media_svc serves.
WEB_DEPS := web/node_modules/.installed
WEB_DIST := web/dist/index.html
WEB_SRC  := $(shell find web/src -type f -not -name schema.d.ts 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

.PHONY: debian-packages web install lock up down status logs test test-web test-faults test-fuzz test-replicas sdk-wheel lint check-imports typecheck buf-lint buf-breaking gen check-gen migrate demo recs envoy-validate k8s-validate clean

install: $(STAMP) $(WEB_DIST)

# -qq: pip's and setuptools' notices (an editable install's) are noise to a newcomer; errors still show.
# Every version and hash comes from requirements/dev.lock (the runtime set, the local servers and
# the development tools); the project itself is installed editable on top, without dependencies.
LOCKS := requirements/runtime.lock requirements/dev.lock
$(STAMP): pyproject.toml $(LOCKS)
	@echo "make install: the one step that downloads (about a minute the first time)"
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	@echo "  Python packages into $(VENV)/ (versions and hashes from requirements/dev.lock) ..."
	@$(PYTHON) -m pip install -qq --require-hashes -r requirements/dev.lock
	@$(PYTHON) -m pip install -qq --no-deps -e .
	@echo "  buf (protobuf lint and breaking-change checks) into .tools/ ..."
	@mkdir -p .tools && cd .tools && (test -f package.json || echo '{"private":true}' > package.json) \
	  && npm install --silent --no-audit --no-fund @bufbuild/buf@1.75.0
	@$(MAKE) --no-print-directory debian-packages $(WEB_DEPS)
	@touch $(STAMP)
	@echo "  installed; everything from here on works offline"

# Versions from web/package-lock.json; its build (below) runs offline.
$(WEB_DEPS): web/package-lock.json
	@echo "  web player packages (Vite, TypeScript, Preact) into web/node_modules/ ..."
	@cd web && npm ci --silent --no-audit --no-fund
	@touch $@

# The web player's bundle, rebuilt when its sources or the API's OpenAPI document change.
web: $(WEB_DIST)
$(WEB_DIST): $(WEB_DEPS) $(WEB_SRC) gen/openapi.json
	@echo "  building the web player (web/dist/) ..."
	@mkdir -p .build && cd web && npm run --silent build > ../.build/web-build.log 2>&1 \
	  || { cat ../.build/web-build.log; exit 1; }

# Re-resolve both lock files from pyproject.toml (needs the package index): runtime.lock is what
# the image installs, dev.lock what make install does. tests/meshctl/test_lock.py keeps them in step.
PIP_COMPILE := $(PYTHON) -m piptools compile -q --strip-extras --generate-hashes --allow-unsafe \
	--no-emit-index-url --no-emit-find-links
lock: $(STAMP)
	$(PIP_COMPILE) -o requirements/runtime.lock pyproject.toml
	$(PIP_COMPILE) --extra local --extra dev --extra cli -o requirements/dev.lock pyproject.toml

# Prometheus, Alertmanager, the Pushgateway, the Redis and PostgreSQL exporters and Chromium (the web
# player's browser tests), from Debian's packages where
# apt-get exists (as root, or through sudo); elsewhere the mesh runs unmonitored and says so.
DEBS := prometheus prometheus-alertmanager prometheus-redis-exporter prometheus-postgres-exporter prometheus-pushgateway chromium
debian-packages:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "  no apt-get here: install $$missing yourself for monitoring (README, Observability)"; exit 0; fi; \
	sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	echo "  Debian packages: "$$missing" ..."; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 \
	  || { $$sudo apt-get update -qq >/dev/null 2>&1 && \
	       $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; }

# google/api/*.proto come from the googleapis-common-protos wheel (BSR is out of reach).
$(GAPI): $(STAMP)
	@$(PYTHON) -m meshctl.protos vendor $(GAPI)

gen: $(STAMP) $(GAPI)
	$(PYTHON) -m meshctl.protos gen
	$(PYTHON) -m meshctl.envoy_config render --target k8s --out k8s/base/envoy/envoy.yaml
	$(PYTHON) -m meshctl.envoy_config render --target k8s-prod --out k8s/overlays/prod/envoy/envoy.yaml
	$(PYTHON) -m meshctl.dashboards
	$(PYTHON) -m meshctl.k8s_monitoring
	$(PYTHON) -m meshctl.k8s network-policies

check-gen: $(STAMP) $(GAPI)
	$(PYTHON) -m meshctl.protos check

buf-lint: $(STAMP) $(GAPI)
	$(BUF) lint

# Images of both trees are compared: the previous commit's is built in a temp dir with the same
# vendored google protos (they are git-ignored, so `--against .git#ref=` would lack them).
buf-breaking: $(STAMP) $(GAPI)
	@if ! git rev-parse --verify -q HEAD~1 >/dev/null; then \
	  echo "buf breaking: no previous commit to compare against"; exit 0; fi; \
	prev=$$(mktemp -d) && trap 'rm -rf "$$prev"' EXIT && \
	git archive HEAD~1 | tar -x -C "$$prev" && \
	mkdir -p "$$prev/.build" && cp -r $(GAPI) "$$prev/.build/" && \
	(cd "$$prev" && $(CURDIR)/$(BUF) build -o "$$prev/before.binpb") && \
	$(BUF) build -o "$$prev/after.binpb" && \
	$(BUF) breaking "$$prev/after.binpb" --against "$$prev/before.binpb" --config buf.yaml && \
	echo "buf breaking: no breaking change against HEAD~1"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The house rules (pyproject.toml [tool.importlinter]): services never import one another, meshkit
# imports no service, layers inside a service point one way, no import loops.
check-imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

# Every product package, the launcher, the SDK, the development data and the benchmarks are type-checked.
TYPED := meshkit meshctl sdk devdata bench auth_svc catalog_svc library_svc playback_svc rec_svc media_svc
typecheck: $(STAMP)
	$(BIN)/mypy $(TYPED)

envoy-validate: $(STAMP)
	$(PYTHON) -m meshctl envoy-validate

# base, dev and prod rendered by kubectl's kustomize into .build/k8s/, then checked strictly
# against the Kubernetes schemas kubernetes-validate carries (offline).
k8s-validate: $(STAMP)
	$(PYTHON) -m meshctl.k8s validate

migrate: $(STAMP)
	@$(PYTHON) -m meshctl migrate

demo: $(STAMP)
	@$(PYTHON) -m meshctl demo

# Rebuild embeddings, hnswlib indexes and Discover Weekly; the running rec_svc swaps them in.
recs: $(STAMP)
	@$(PYTHON) -m meshctl recs

up: $(STAMP) $(GAPI) $(WEB_DIST)
	@$(PYTHON) -m meshctl up

down:
	@if test -x $(PYTHON); then $(PYTHON) -m meshctl down; else echo "nothing installed, nothing running"; fi

status: $(STAMP)
	@$(PYTHON) -m meshctl status

logs: $(STAMP)
	@$(PYTHON) -m meshctl logs

test: $(STAMP) $(GAPI) $(WEB_DIST)
	@$(BIN)/pytest

# Processes killed and data servers restarted on a mesh of the fault tests' own (tests/faults),
# on a private data tier: never beside `make test`, never on the machine's shared servers. Its run
# directory is its own (pytest prunes shared temp dirs that other runs' meshes may still use).
test-faults: $(STAMP) $(GAPI) $(WEB_DIST)
	@$(BIN)/pytest --faults --basetemp=$(CURDIR)/.build/test-faults tests/faults

# The web player driven in Debian's chromium through Envoy, on a mesh of its own whose signed media
# URLs expire within a track; screenshots of each screen land in .build/test-web/screens/.
test-web: $(STAMP) $(GAPI) $(WEB_DIST)
	@$(BIN)/pytest --web --basetemp=$(CURDIR)/.build/test-web tests/web

# Every JSON route of gen/openapi.json fuzzed by schemathesis through Envoy (premium and
# anonymous), on a mesh of its own whose rate limits are raised through its limits file.
test-fuzz: $(STAMP) $(GAPI) $(WEB_DIST)
	@$(BIN)/pytest --fuzz --basetemp=$(CURDIR)/.build/test-fuzz tests/fuzz

# Every test that runs against the mesh, again on two processes of every service behind Envoy, and
# one replica of each killed under load (tests/replicas). Its own run directory, as above.
test-replicas: $(STAMP) $(GAPI) $(WEB_DIST)
	@MESH_REPLICAS=2 $(BIN)/pytest --replicas --basetemp=$(CURDIR)/.build/test-replicas

# The SDK's own wheel (the sdk package and the generated stubs, its `sdk` extra as dependencies) into dist/.
sdk-wheel: $(STAMP)
	@$(PYTHON) -m meshctl.sdk_wheel --out $(CURDIR)/dist

clean: down
	rm -rf .run .build
