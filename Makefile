# One entry point for a newcomer: `make up`, `make test`, `make down`.
# Every download happens in `install`; everything after it works offline.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
BUF     := .tools/node_modules/.bin/buf
STAMP   := $(VENV)/.installed
GAPI    := .build/protos

.PHONY: debian-packages install up down status logs test test-faults test-fuzz lint check-imports typecheck buf-lint buf-breaking gen check-gen migrate demo recs envoy-validate clean

install: $(STAMP)

# -qq: pip's and setuptools' notices (an editable install's) are noise to a newcomer; errors still show.
$(STAMP): pyproject.toml
	@echo "make install: the one step that downloads (about a minute the first time)"
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	@echo "  Python packages into $(VENV)/ ..."
	@$(PYTHON) -m pip install -qq --upgrade pip
	@$(PYTHON) -m pip install -qq -e '.[dev]'
	@echo "  buf (protobuf lint and breaking-change checks) into .tools/ ..."
	@mkdir -p .tools && cd .tools && (test -f package.json || echo '{"private":true}' > package.json) \
	  && npm install --silent --no-audit --no-fund @bufbuild/buf@1.75.0
	@$(MAKE) --no-print-directory debian-packages
	@touch $(STAMP)
	@echo "  installed; everything from here on works offline"

# Prometheus, Alertmanager and the Redis and PostgreSQL exporters, from Debian's packages where
# apt-get exists (as root, or through sudo); elsewhere the mesh runs unmonitored and says so.
DEBS := prometheus prometheus-alertmanager prometheus-redis-exporter prometheus-postgres-exporter
debian-packages:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "  no apt-get here: install $$missing yourself for monitoring (README, Observability)"; exit 0; fi; \
	sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	echo "  Debian packages: $$missing ..."; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 \
	  || { $$sudo apt-get update -qq >/dev/null 2>&1 && \
	       $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; }

# google/api/*.proto come from the googleapis-common-protos wheel (BSR is out of reach).
$(GAPI): $(STAMP)
	@$(PYTHON) -m meshctl.protos vendor $(GAPI)

gen: $(STAMP) $(GAPI)
	$(PYTHON) -m meshctl.protos gen
	$(PYTHON) -m meshctl.envoy_config render --target k8s --out k8s/base/envoy/envoy.yaml
	$(PYTHON) -m meshctl.dashboards

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

migrate: $(STAMP)
	@$(PYTHON) -m meshctl migrate

demo: $(STAMP)
	@$(PYTHON) -m meshctl demo

# Rebuild embeddings, hnswlib indexes and Discover Weekly; the running rec_svc swaps them in.
recs: $(STAMP)
	@$(PYTHON) -m meshctl recs

up: $(STAMP) $(GAPI)
	@$(PYTHON) -m meshctl up

down:
	@if test -x $(PYTHON); then $(PYTHON) -m meshctl down; else echo "nothing installed, nothing running"; fi

status: $(STAMP)
	@$(PYTHON) -m meshctl status

logs: $(STAMP)
	@$(PYTHON) -m meshctl logs

test: $(STAMP) $(GAPI)
	@$(BIN)/pytest

# Processes killed and data servers restarted on a mesh of the fault tests' own (tests/faults),
# on a private data tier: never beside `make test`, never on the machine's shared servers. Its run
# directory is its own (pytest prunes shared temp dirs that other runs' meshes may still use).
test-faults: $(STAMP) $(GAPI)
	@$(BIN)/pytest --faults --basetemp=$(CURDIR)/.build/test-faults tests/faults

# Every JSON route of gen/openapi.json fuzzed by schemathesis through Envoy (premium and
# anonymous), on a mesh of its own whose rate limits are raised through its limits file.
test-fuzz: $(STAMP) $(GAPI)
	@$(BIN)/pytest --fuzz --basetemp=$(CURDIR)/.build/test-fuzz tests/fuzz

clean: down
	rm -rf .run .build
