# Clusternet. `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
comma := ,
space := $(empty) $(empty)
GO    ?= go
BIN   := $(CURDIR)/bin
TOOLS := $(BIN)/tools
PKG   := github.com/clusternet/clusternet

VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
GIT_COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w \
	-X $(PKG)/pkg/version.gitVersion=$(VERSION) \
	-X $(PKG)/pkg/version.gitCommit=$(GIT_COMMIT) \
	-X $(PKG)/pkg/version.buildDate=$(BUILD_DATE)

# e2e packages share the machine with their control planes: two at a time is what 2 cores take.
E2E_PARALLEL ?= 2
# The longest e2e packages start first (longest first, as measured in
# docs/development.md's Timings), so the two at a time end together rather
# than one long package running alone at the end; the rest follow in go
# list's order, so a new package runs without being listed here.
E2E_FIRST := test/e2e test/e2e/docs test/e2e/cli test/e2e/security test/e2e/deployer
E2E_PKGS   = $(addprefix $(PKG)/,$(E2E_FIRST)) $(filter-out $(addprefix $(PKG)/,$(E2E_FIRST)),$(shell $(GO) list ./test/e2e/...))
TESTBED_DIR  ?= $(CURDIR)/_output/testbed

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

##@ Build

.PHONY: build
build: ## Build kubectl-clusternet and the testbed command into bin/.
	@# Static, as the images are (hack/images): with cgo, Go's plugin package (imported through Helm,
	@# cli-runtime and kustomize) makes the linker export every symbol, and the hub and agent map
	@# 10-25 MiB more of their binaries (docs/benchmarks.md, bench:idle).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/... ./test/testbed/cmd/testbed ./test/framework/cmd/local-up

IMAGES_DIR      ?= $(CURDIR)/_output/images
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64
# hack/images builds the binaries (static, VERSION stamped) and the images,
# with the commit's time for the build date and every time in the images,
# so the same commit gives the same digests. $(1) is the output folder.
build-images = $(GO) run ./hack/images --out '$(1)' --platforms '$(subst $(space),$(comma),$(IMAGE_PLATFORMS))' \
	--version '$(VERSION)' --revision '$(GIT_COMMIT)' --created '$(RELEASE_DATE)' --ldflags '$(RELEASE_LDFLAGS)'

.PHONY: images
images: ## Hub and agent images for linux/amd64 and linux/arm64, one OCI layout each, in _output/images (no Docker needed).
	$(call build-images,$(IMAGES_DIR))

##@ Run

.PHONY: local-up
local-up: build testbed-build ## A parent with the hub and two registered children with agents (the README's main job).
	$(BIN)/local-up --dir $(TESTBED_DIR) --bin $(BIN)

.PHONY: local-down
local-down: testbed-down ## Stop what local-up started.

##@ Code generation

GEN_APIS    := clusters/v1beta1 apps/v1alpha1
GEN_PKGS    := $(addprefix $(PKG)/pkg/apis/,$(GEN_APIS))
GEN_OUT     := pkg/generated
GEN_HEADER  := hack/boilerplate.go.txt
# core/v1 types our types use: client-go has their apply configurations.
GEN_EXTERNAL_APPLYCONFIGS := $(subst $(space),$(comma),$(foreach t,Taint Toleration TopologySpreadConstraint Affinity ResourceRequirements,k8s.io/api/core/v1.$(t):k8s.io/client-go/applyconfigurations/core/v1))

.PHONY: generate
generate: $(TOOLS)/controller-gen $(TOOLS)/applyconfiguration-gen $(TOOLS)/client-gen $(TOOLS)/lister-gen $(TOOLS)/informer-gen $(TOOLS)/openapi-gen ## Regenerate deepcopy, CRDs, apply configurations, clientset, listers, informers, OpenAPI.
	$(TOOLS)/controller-gen object:headerFile=$(GEN_HEADER) paths=./pkg/apis/...
	rm -rf deploy/crds/*.yaml $(GEN_OUT)
	$(TOOLS)/controller-gen crd:crdVersions=v1,allowDangerousTypes=true paths=./pkg/apis/... output:crd:artifacts:config=deploy/crds
	@# The apply configurations embed the CRDs' schema (hack/models-schema): the
	@# fake clientset's NewClientset tracks managed fields with it.
	schema=$$(mktemp) && trap 'rm -f "$$schema"' EXIT && \
	$(GO) run ./hack/models-schema deploy/crds > "$$schema" && \
	$(TOOLS)/applyconfiguration-gen --go-header-file $(GEN_HEADER) --openapi-schema "$$schema" \
		--external-applyconfigurations $(GEN_EXTERNAL_APPLYCONFIGS) \
		--output-dir $(GEN_OUT)/applyconfiguration --output-pkg $(PKG)/$(GEN_OUT)/applyconfiguration $(GEN_PKGS)
	$(TOOLS)/client-gen --go-header-file $(GEN_HEADER) --clientset-name versioned \
		--input-base $(PKG)/pkg/apis --input $(subst $(space),$(comma),$(GEN_APIS)) \
		--apply-configuration-package $(PKG)/$(GEN_OUT)/applyconfiguration \
		--output-dir $(GEN_OUT)/clientset --output-pkg $(PKG)/$(GEN_OUT)/clientset
	$(TOOLS)/lister-gen --go-header-file $(GEN_HEADER) \
		--output-dir $(GEN_OUT)/listers --output-pkg $(PKG)/$(GEN_OUT)/listers $(GEN_PKGS)
	$(TOOLS)/informer-gen --go-header-file $(GEN_HEADER) \
		--versioned-clientset-package $(PKG)/$(GEN_OUT)/clientset/versioned \
		--listers-package $(PKG)/$(GEN_OUT)/listers \
		--output-dir $(GEN_OUT)/informers --output-pkg $(PKG)/$(GEN_OUT)/informers $(GEN_PKGS)
	$(TOOLS)/openapi-gen --go-header-file $(GEN_HEADER) --report-filename /dev/null \
		--output-dir $(GEN_OUT)/openapi --output-pkg $(PKG)/$(GEN_OUT)/openapi --output-file zz_generated.openapi.go \
		$(PKG)/pkg/apis/proxies/v1alpha1 k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/version
	@# KEP-1645's CRDs as sigs.k8s.io/mcs-api ships them (docs/mcs.md): the parent
	@# holds ServiceImport templates; children get them from the agent chart.
	mcs=$$($(GO) list -m -f '{{.Dir}}' sigs.k8s.io/mcs-api) && \
	install -m 0644 $$mcs/config/crd/multicluster.x-k8s.io_*.yaml deploy/crds/ && \
	rm -rf charts/clusternet-agent/crds && mkdir -p charts/clusternet-agent/crds && \
	install -m 0644 $$mcs/config/crd/multicluster.x-k8s.io_*.yaml charts/clusternet-agent/crds/
	@# The hub chart ships the CRDs; deploy/ is rendered from the charts.
	rm -rf charts/clusternet-hub/crds && mkdir -p charts/clusternet-hub/crds && cp deploy/crds/*.yaml charts/clusternet-hub/crds/
	$(GO) run ./hack/render-deploy --out deploy

##@ Test

.PHONY: test
TEST_STAGES := test-unit test-fuzz test-images testbed-build test-e2e test-chaos
test: ## Unit tests with -race, each fuzz target briefly, the images, then end-to-end tests on real control planes, then a short chaos run.
	@# Each stage's time is printed at the end (and after a failure), where
	@# a CI log's tail shows it: the testbed's cold build is a stage of its own.
	@start=$$SECONDS; took=""; \
	for stage in $(TEST_STAGES); do \
	  s=$$SECONDS; \
	  if ! $(MAKE) --no-print-directory $$stage; then \
	    echo "make test: $$stage failed after $$((SECONDS - s))s; before it:$$took"; exit 1; \
	  fi; \
	  took="$$took $$stage $$((SECONDS - s))s,"; \
	done; \
	echo "make test: passed in $$((SECONDS - start))s:$${took%,}"

.PHONY: test-unit
test-unit: ## Unit tests (-race, -short: no control planes).
	$(GO) test -race -short -count=1 ./...

.PHONY: test-images
test-images: ## Build the hub and agent images twice and check them from their OCI layouts (hack/images).
	$(GO) test -count=1 -timeout 30m ./hack/images

.PHONY: test-e2e
test-e2e: testbed-build ## End-to-end tests on real kube-apiservers, etcd, controllers and kwok.
	@# Hub and agent are built with -race (e2eutil.RaceEnv): a data race fails the package.
	CLUSTERNET_E2E_RACE=1 $(GO) test -count=1 -timeout 40m -p $(E2E_PARALLEL) $(E2E_PKGS)

# Fuzzing (docs/development.md): hack/fuzz.sh runs every func FuzzXxx(f *testing.F)
# under pkg/. A failing input lands in the package's testdata/fuzz/<target>/ and
# runs with the unit tests from then on.
FUZZTIME      ?= 10s
FUZZ_PARALLEL ?= 1

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s; FUZZTIME=10m to soak; FUZZ_SHARD=i/n splits).
	GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZ_PARALLEL=$(FUZZ_PARALLEL) hack/fuzz.sh

.PHONY: test-fuzz
test-fuzz: ## Every fuzz target for 5s (make test runs it; the seed corpora also run in test-unit).
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s

# The chaos suite (docs/reliability.md): CHAOS_SEED=<n> replays a run's schedules.
DURATION      ?= 1h
CHAOS_TIMEOUT ?= 3h

.PHONY: test-chaos
test-chaos: testbed-build ## A short chaos run (5 minutes, at least 30 faults) on real control planes.
	$(GO) test -count=1 -timeout 40m -v ./test/chaos -run TestChaos -chaos.duration=5m -chaos.min-faults=30

.PHONY: chaos
chaos: testbed-build ## The chaos suite for DURATION (default 1h): faults injected while rollouts flow, invariants checked.
	$(GO) test -count=1 -timeout $(CHAOS_TIMEOUT) -v ./test/chaos -run TestChaos -chaos.duration=$(DURATION)

.PHONY: bench
bench: build testbed-build ## Benchmarks on the real testbed; results go to docs/benchmarks.md.
	$(GO) run ./test/bench --hub $(BIN)/hub --agent $(BIN)/agent --plugin $(BIN)/kubectl-clusternet --out docs/benchmarks.md

.PHONY: bench-scale
bench-scale: build testbed-build ## 1,000 clusters on one parent and hub (stand-in agents, in-memory children); results go to docs/benchmarks.md.
	$(GO) run ./test/scale --hub $(BIN)/hub --agent $(BIN)/agent --clusters 1000 --out docs/benchmarks.md

.PHONY: testbed-build
testbed-build: ## Build (or find cached) etcd, Kubernetes and kwok binaries.
	bash hack/testbed-build.sh >/dev/null

.PHONY: testbed-up
testbed-up: build testbed-build ## Start a parent and two children in $(TESTBED_DIR).
	$(BIN)/testbed up --dir $(TESTBED_DIR) --children 2

.PHONY: testbed-down
testbed-down: build ## Stop the testbed that testbed-up started.
	$(BIN)/testbed down --dir $(TESTBED_DIR)

##@ Verify

.PHONY: verify
verify: verify-fmt verify-vet verify-lint verify-tidy verify-generated verify-docs verify-doc-links verify-krew ## Everything CI checks besides tests.

.PHONY: verify-fmt
verify-fmt: $(TOOLS)/goimports ## gofmt and goimports leave every file as it is.
	@out=$$($(TOOLS)/goimports -l -local $(PKG) $$(git ls-files --cached --others --exclude-standard '*.go' ':!:**/zz_generated.*' ':!:pkg/generated/**')); \
	if [ -n "$$out" ]; then echo "run 'make fmt'; these files are not formatted:"; echo "$$out"; exit 1; fi

.PHONY: fmt
fmt: $(TOOLS)/goimports ## Format every Go file.
	$(TOOLS)/goimports -w -local $(PKG) $$(git ls-files --cached --others --exclude-standard '*.go' ':!:**/zz_generated.*' ':!:pkg/generated/**')

.PHONY: verify-vet
verify-vet: ## go vet.
	$(GO) vet ./...

.PHONY: verify-lint
verify-lint: $(TOOLS)/golangci-lint ## golangci-lint (version pinned in hack/tools/go.mod).
	$(TOOLS)/golangci-lint run ./...

.PHONY: verify-tidy
verify-tidy: ## go.mod and go.sum are tidy.
	$(GO) mod tidy -diff
	cd hack/tools && $(GO) mod tidy -diff

.PHONY: verify-generated
verify-generated: generate ## Generated code matches its sources.
	@git diff --exit-code -- pkg/apis pkg/generated deploy charts/clusternet-hub/crds || { echo "generated files are stale: run 'make generate' and commit"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- pkg/apis pkg/generated deploy charts/clusternet-hub/crds); \
	if [ -n "$$untracked" ]; then echo "generated files not committed: $$untracked"; exit 1; fi

.PHONY: verify-docs
verify-docs: docs ## docs/cli is what the commands generate.
	@git diff --exit-code -- docs/cli || { echo "docs/cli is stale: run 'make docs' and commit"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- docs/cli); \
	if [ -n "$$untracked" ]; then echo "generated docs not committed: $$untracked"; exit 1; fi

.PHONY: verify-doc-links
verify-doc-links: ## Links and anchors, repository paths, make targets and flags the docs name all exist (hack/doccheck).
	$(GO) run ./hack/doccheck

.PHONY: verify-krew
verify-krew: ## plugins/clusternet.yaml is a valid krew manifest and agrees with .krew.yaml.
	$(GO) run ./hack/krew verify
	@# krew's own validator, on the platforms krew runs on (it does not know linux/s390x).
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	$(GO) run ./hack/krew krew-index > "$$dir/clusternet.yaml" && \
	"$$(bash hack/krew-build.sh)/validate-krew-manifest" -skip-install -manifest "$$dir/clusternet.yaml"

##@ Docs and release

.PHONY: docs
docs: ## Generate docs/cli (one page per command) from the plugin's commands.
	LC_ALL=C LANG=C LC_MESSAGES=C $(GO) run ./hack/cli-docs docs/cli

RELEASE_DIR       ?= $(CURDIR)/_output/release
# Archives are reproducible: the build date is the commit's, not the clock's.
RELEASE_DATE      ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo $(BUILD_DATE))
RELEASE_PLATFORMS ?= darwin/amd64 darwin/arm64 linux/amd64 linux/arm64 linux/ppc64le linux/s390x linux/386 linux/arm
# The build date replaced by pattern, not by BUILD_DATE's value: BUILD_DATE
# is `date` again at each use and may have ticked since LDFLAGS took it.
RELEASE_LDFLAGS    = $(patsubst $(PKG)/pkg/version.buildDate=%,$(PKG)/pkg/version.buildDate=$(RELEASE_DATE),$(LDFLAGS))

.PHONY: release
release: ## kubectl-clusternet archives for every platform and sha256 checksums, and the hub and agent images, in _output/release.
	VERSION='$(VERSION)' LDFLAGS='$(RELEASE_LDFLAGS)' \
		PLATFORMS='$(RELEASE_PLATFORMS)' OUT='$(RELEASE_DIR)' bash hack/release.sh
	$(call build-images,$(RELEASE_DIR))

.PHONY: krew-manifest
krew-manifest: ## Render plugins/clusternet.yaml from .krew.yaml for VERSION and the archives `make release` built.
	$(GO) run ./hack/krew render --version '$(VERSION)' --checksums '$(RELEASE_DIR)/checksums.txt' > plugins/clusternet.yaml.tmp
	mv plugins/clusternet.yaml.tmp plugins/clusternet.yaml

.PHONY: krew-build
krew-build: ## Build (or find cached) krew v0.4.4 and validate-krew-manifest from the module proxy.
	bash hack/krew-build.sh

# Tools are built from hack/tools/go.mod, which pins their versions; a go.mod
# change there rebuilds them.
$(TOOLS)/%: hack/tools/go.mod hack/tools/go.sum
	@mkdir -p $(TOOLS)
	cd hack/tools && GOBIN=$(TOOLS) $(GO) install $$(grep -E '^\s+[^ ]+/$*$$' go.mod | tr -d '[:space:]')

.PHONY: clean
clean: ## Remove build output (the testbed cache outside the repo stays).
	rm -rf $(BIN) _output
