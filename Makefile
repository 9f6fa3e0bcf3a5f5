# kube-ecrlogin. Every recipe runs with the project's own Node.js 24 (from the npm `node` package),
# never the machine's Node.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NODE_BIN := $(CURDIR)/node_modules/.bin
export PATH := $(NODE_BIN):$(PATH)
NODE := $(NODE_BIN)/node
TS := $(NODE) --enable-source-maps --disable-warning=ExperimentalWarning
TEST_FILES ?= 'test/**/*.test.ts'
TEST_CONCURRENCY ?= 2
# The Kubernetes minor for dev-up, demo, bench and tests: 1.37 (default, the newest tested) or 1.34
# (the oldest). `make test` runs every test on 1.37, then the suites in BOTH_MINORS_TESTS on 1.34.
KUBE_VERSION ?= 1.37
export KUBE_VERSION
BOTH_MINORS_TESTS ?= test/cluster/controlplane.test.ts 'test/admission/*.test.ts' test/kustomize/rbac.test.ts test/kustomize/apply.test.ts \
  test/controller/credentials.test.ts test/controller/lifecycle.test.ts test/controller/identity.test.ts test/controller/secrets.test.ts test/controller/policy.test.ts

##@ General

.PHONY: help
help: ## Show this help.
	@# Colours only on a terminal: piped or in CI, plain text.
	@if [ -t 1 ]; then c='\033[36m' b='\033[1m' r='\033[0m'; else c= b= r=; fi; \
	awk -v c="$$c" -v b="$$b" -v r="$$r" 'BEGIN {FS = ":.*##"; printf "Usage: make %s<target>%s\n", c, r} \
	  /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %s%-14s%s %s\n", c, $$1, r, $$2 } \
	  /^##@/ { printf "\n%s%s%s\n", b, substr($$0, 5), r }' $(MAKEFILE_LIST)

##@ Development

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@test "$$($(NODE) -p 'process.versions.node.split(".")[0]')" = 24 || { echo "node_modules/.bin/node is not Node 24" >&2; exit 1; }
	@touch $@

.PHONY: deps
deps: node_modules/.installed ## Install dependencies (npm ci), including Node.js 24.

.PHONY: build
build: deps ## Compile TypeScript into dist/, and the image's one-file bundle dist/kube-ecrlogin.mjs.
	rm -rf dist
	tsc -p tsconfig.build.json
	chmod +x dist/cli.js
	npm run --silent bundle
	chmod +x dist/kube-ecrlogin.mjs

.PHONY: lint
lint: deps ## Lint with ESLint, the format with Prettier, the shape of src/ with dependency-cruiser (no cycles, adapters import no domain), unused files and exports with knip, and the GitHub workflows with actionlint (built from its Go module, cached).
	eslint .
	prettier --check --log-level warn .
	depcruise src --config .dependency-cruiser.cjs
	knip --no-progress
	"$$(test/actionlint/build.sh)" -color=false

.PHONY: format
format: deps ## Format the code (TypeScript, JavaScript, JSON) with Prettier; Markdown and YAML are written by hand.
	prettier --write --log-level warn .

.PHONY: typecheck
typecheck: deps ## Type-check sources and tests.
	tsc -p tsconfig.json --noEmit

.PHONY: cluster-bin
cluster-bin: ## Build etcd, kube-apiserver, kube-controller-manager of both minors (cached by version).
	KUBE_VERSION=1.37 test/cluster/build.sh >/dev/null
	KUBE_VERSION=1.34 test/cluster/build.sh >/dev/null

.PHONY: promtool
promtool: ## Build Prometheus's promtool (cached by version), for the alerting rules' tests.
	test/promtool/build.sh >/dev/null

.PHONY: flux
flux: ## Build Flux's source-controller and kustomize-controller (cached by version), for the GitOps tests.
	test/gitops/flux/build.sh >/dev/null

.PHONY: argocd
argocd: ## Build Argo CD (cached by version) and install Debian's redis-server (root), for the GitOps tests.
	test/gitops/argocd/build.sh >/dev/null
	test/gitops/argocd/install-redis.sh >/dev/null

.PHONY: moto
moto: ## Install moto into .cache/moto-venv.
	test/aws/install-moto.sh

.PHONY: dev-up
dev-up: deps cluster-bin moto ## Start a local control plane and the AWS test server in the background.
	$(TS) test/dev.ts up

.PHONY: dev-down
dev-down: deps ## Stop what dev-up started.
	$(TS) test/dev.ts down

##@ Deploy

# The version lives in package.json only; everything else is derived from it (test/release/version.test.ts).
PACKAGE_VERSION := $(shell sed -n 's/^  "version": "\([^"]*\)",$$/\1/p' package.json)
VERSION ?= v$(PACKAGE_VERSION)
IMAGE_REPO ?= ghcr.io/kube-ecrlogin/kube-ecrlogin
IMG ?= $(IMAGE_REPO):$(PACKAGE_VERSION)

.PHONY: validate
validate: ## Build every kustomization under kustomize/ (kubectl kustomize).
	test/kustomize/validate.sh

.PHONY: image
image: ## Build the container image with docker (IMG=...), labelled with the package.json version.
	docker build --build-arg VERSION=$(PACKAGE_VERSION) -t $(IMG) .

.PHONY: image-buildah
image-buildah: ## Build the image without Docker: buildah on a local Debian base (root; apt buildah debootstrap).
	test/kustomize/buildah-build.sh

.PHONY: bump
bump: ## Set the version (VERSION=vX.Y.Z) in package.json and every copy of it; open its CHANGELOG.md section.
	test/release/bump.sh $(VERSION)

.PHONY: release
release: ## Render dist/release/ (install.yaml, install-seed-compatible.yaml, one file per component) for VERSION=vX.Y.Z.
	test/release/render.sh $(VERSION)

.PHONY: deploy
deploy: ## Apply kustomize/overlays/default to the current kubectl context.
	kubectl apply -k kustomize/overlays/default

##@ Test

.PHONY: test
test: lint typecheck cluster-bin moto promtool flux argocd ## Lint, type-check and run every test on Kubernetes 1.37, and the admission, RBAC and main suites on 1.34.
	KUBE_VERSION=1.37 $(TS) --test --test-concurrency=$(TEST_CONCURRENCY) --test-timeout=600000 \
	  --test-global-setup=test/setup.ts $(TEST_FILES)
	KUBE_VERSION=1.34 $(TS) --test --test-concurrency=$(TEST_CONCURRENCY) --test-timeout=600000 \
	  --test-global-setup=test/setup.ts $(BOTH_MINORS_TESTS)

.PHONY: test-unit
test-unit: deps ## Only the tests in test/unit/: no control plane, no AWS emulator, nothing built (seconds).
	$(TS) --test --test-concurrency=$(TEST_CONCURRENCY) --test-timeout=60000 'test/unit/**/*.test.ts'

.PHONY: gitops
gitops: deps cluster-bin flux argocd ## Only the GitOps suites: Flux and Argo CD syncing the overlays and tenants from a loopback Git server.
	$(TS) --test --test-timeout=600000 --test-global-setup=test/setup.ts 'test/gitops/*.test.ts'

.PHONY: test-kubelet
test-kubelet: deps ## As root: real Pods pull from an ECR-shaped registry with our Secrets (kubelet, containerd; skips where it cannot run).
	$(TS) test/kubelet/run.ts

.PHONY: chaos
chaos: deps cluster-bin ## Run every fault against a private control plane; report in .cache/chaos/.
	$(TS) test/chaos/run.ts

.PHONY: demo
demo: deps cluster-bin ## Run the main job end to end on a local control plane.
	$(TS) test/demo.ts

.PHONY: clean
clean: ## Remove build output and local caches (keeps the Kubernetes binary cache in ~/.cache).
	rm -rf dist .cache

##@ Benchmark

.PHONY: bench
bench: deps cluster-bin ## Measure cold start, latency, API and AWS cost (BENCH_SIZES="100 1000 5000 10000" for the full set).
	$(TS) test/bench/run.ts
