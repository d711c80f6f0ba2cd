# talkover-operator Makefile, in the style of a kubebuilder v4 project.

# VERSION is the release version. The VERSION file is its single source (X.Y.Z);
# 'make release VERSION=v0.2.0' overrides it for one run. dist/chart/Chart.yaml
# carries the same version (test/release fails when they drift; 'make
# set-version VERSION=...' changes both).
VERSION ?= $(shell cat VERSION)
# RELEASE_VERSION is VERSION without a leading v: the chart's version and appVersion.
RELEASE_VERSION := $(patsubst v%,%,$(strip $(VERSION)))
# TAG is the image tag and what the binary reports (--version, User-Agent);
# the chart derives the same tag from its appVersion.
TAG := v$(RELEASE_VERSION)
# IMG_REPO and IMG name the manager image.
IMG_REPO ?= ghcr.io/talkover/talkover-operator
IMG ?= $(IMG_REPO):$(TAG)

# Kubernetes version of the local control plane used by tests and the demo.
K8S_VERSION ?= 1.37.2
K8S_MINOR := $(word 2,$(subst ., ,$(K8S_VERSION)))

# LOCALBIN holds every tool and binary the project builds.
LOCALBIN ?= $(shell pwd)/bin

ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

# Setting SHELL to bash allows bash commands to be executed by recipes.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

GO_TEST_ARGS ?= -race
GO_BUILD_ENV ?= CGO_ENABLED=0
LDFLAGS ?= -s -w -X github.com/talkover/talkover-operator/internal/version.Version=$(TAG)

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the markers in api/ and internal/.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:generateEmbeddedObjectMeta=false webhook paths="./..." output:crd:artifacts:config=config/crd/bases
	hack/chart-sync.sh
	go run ./hack/chartdoc

.PHONY: chart-docs
chart-docs: ## Write dist/chart/README.md from the "# --" comments of dist/chart/values.yaml.
	go run ./hack/chartdoc

.PHONY: generate
generate: controller-gen ## Generate the DeepCopy methods of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: test
test: manifests generate fmt vet envtest-assets helm ## Run every test (unit, envtest, e2e) against a local control plane.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" PATH="$(ENVTEST_ASSETS):$$PATH" go test $(GO_TEST_ARGS) ./... -timeout 20m

FUZZ_TIME ?= 30s
.PHONY: fuzz
fuzz: envtest-assets ## Fuzz the payload builder and the response parser for FUZZ_TIME each (new corpus entries go to Go's cache).
	go test ./internal/talkover/ -run '^$$' -fuzz FuzzResponse -fuzztime $(FUZZ_TIME)
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test ./internal/controller/ -run '^$$' -fuzz FuzzBuildRequest -fuzztime $(FUZZ_TIME)

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	$(GOLANGCI_LINT) run

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and fix what it can.
	$(GOLANGCI_LINT) run --fix

.PHONY: verify
verify: manifests generate fmt ## Regenerate everything and fail if the tree changed.
	@if [ -n "$$(git status --porcelain)" ]; then \
		echo "The tree changed after 'make manifests generate fmt':"; git status --porcelain; git --no-pager diff --stat; exit 1; \
	fi

.PHONY: test-e2e
test-e2e: envtest-assets helm ## Run the end-to-end test: the manager binary with the Helm chart's RBAC, driven by kubectl, on a local control plane and the simulator.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test ./test/e2e/... -count=1 -v -timeout 10m

.PHONY: demo
demo: envtest-assets build ## Run the samples on a local control plane and the simulator (Ctrl-C stops; DEMO_ONCE=1 exits once they are Ready).
	go build -o $(LOCALBIN)/talkover-demo ./cmd/demo
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(LOCALBIN)/talkover-demo

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary.
	$(GO_BUILD_ENV) go build -trimpath -ldflags "$(LDFLAGS)" -o bin/manager ./cmd

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster of KUBECONFIG.
	go run ./cmd

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(TAG) -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the container image.
	docker push $(IMG)

.PHONY: build-installer
build-installer: manifests generate kustomize ## Write dist/install.yaml (the CRDs, RBAC and the Deployment of IMG) with kustomize.
	mkdir -p dist
	$(KUSTOMIZE) build config/default | sed 's|controller:latest|$(IMG)|' > dist/install.yaml

# RELEASE_PLATFORMS are the platforms of the release binaries.
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64
CHART_PACKAGE := dist/talkover-operator-$(RELEASE_VERSION).tgz

# CA_BUNDLE is the PEM bundle the image trusts (the build machine's).
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
# SOURCE_DATE_EPOCH is every timestamp of the image: the commit's time.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: release
release: build-installer helm ## Write a release into dist/: install.yaml, the binaries, the OCI images with SBOMs, the chart package and SHA256SUMS, and check them (VERSION=vX.Y.Z to override the VERSION file).
	@for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		echo "Building dist/manager-$${os}-$${arch} ($(TAG))"; \
		$(GO_BUILD_ENV) GOOS=$${os} GOARCH=$${arch} go build -trimpath -ldflags "$(LDFLAGS)" -o dist/manager-$${os}-$${arch} ./cmd; \
	done
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) go run ./hack/ociimage -out dist/oci -sbom-dir dist -version $(TAG) \
		-repository $(IMG_REPO) -revision "$$(git rev-parse HEAD 2>/dev/null)" -ca-bundle $(CA_BUNDLE) \
		$(foreach p,$(RELEASE_PLATFORMS),-binary $(p)=dist/manager-$(subst /,-,$(p)))
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
		cp -R dist/chart "$$tmp/talkover-operator"; \
		hack/set-version.sh "$(RELEASE_VERSION)" "$$tmp/talkover-operator/Chart.yaml"; \
		$(HELM) lint --quiet "$$tmp/talkover-operator"; \
		$(HELM) package "$$tmp/talkover-operator" --destination dist >/dev/null
	@cd dist && sha256sum install.yaml $(notdir $(CHART_PACKAGE)) oci/index.json \
		$(foreach p,$(RELEASE_PLATFORMS),manager-$(subst /,-,$(p)) sbom-$(subst /,-,$(p)).spdx.json) > SHA256SUMS
	RELEASE_DIR="$(CURDIR)/dist" RELEASE_TAG=$(TAG) go test ./test/release -run TestReleaseArtifacts -count=1
	@echo "Release $(TAG) written to dist/ (the image: oci:dist/oci:$(TAG), for example 'skopeo copy --all oci:dist/oci:$(TAG) docker://$(IMG_REPO):$(TAG)'):"; \
		cd dist && cat SHA256SUMS

.PHONY: set-version
set-version: ## Set the release version (VERSION=X.Y.Z) in VERSION and dist/chart/Chart.yaml.
	echo "$(RELEASE_VERSION)" > VERSION
	hack/set-version.sh "$(RELEASE_VERSION)" dist/chart/Chart.yaml
	@echo "Now add the release's entry to CHANGELOG.md and to the artifacthub.io/changes annotation of dist/chart/Chart.yaml."

##@ Benchmark

# BENCH_ARGS are passed to the benchmark, e.g. BENCH_ARGS="-quick" or
# BENCH_ARGS="-scenarios 0,1"; its output is also written to BENCH_OUT.
BENCH_ARGS ?=
BENCH_OUT ?= $(LOCALBIN)/bench.txt

.PHONY: bench
bench: envtest-assets build ## Run the scale benchmark (test/bench, several minutes) against a local control plane and the simulator; not part of 'make test'.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go run ./test/bench -manager $(LOCALBIN)/manager $(BENCH_ARGS) 2>&1 | tee $(BENCH_OUT)

##@ Deployment

# KUBECTL is the kubectl on PATH; use the local one with
# KUBECTL=bin/k8s/$(K8S_VERSION)-linux-amd64/kubectl (after make envtest-assets).
KUBECTL ?= kubectl

.PHONY: install
install: manifests ## Install the CRDs into the cluster of KUBECONFIG.
	$(KUBECTL) apply --server-side -f config/crd/bases

.PHONY: uninstall
uninstall: manifests ## Uninstall the CRDs (and so every AgentAction and Environment) from the cluster of KUBECONFIG.
	$(KUBECTL) delete --ignore-not-found -f config/crd/bases

.PHONY: deploy
deploy: manifests kustomize ## Deploy the operator (image IMG) with the kustomize manifests into the cluster of KUBECONFIG.
	$(KUSTOMIZE) build config/default | sed 's|controller:latest|$(IMG)|' | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: kustomize ## Remove what deploy created, the CRDs included, from the cluster of KUBECONFIG.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found -f -

##@ Local control plane

ENVTEST_ASSETS ?= $(LOCALBIN)/k8s/$(K8S_VERSION)-linux-amd64
K8S_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=v$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(K8S_MINOR) \
	-X k8s.io/client-go/pkg/version.gitVersion=v$(K8S_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=$(K8S_MINOR)

.PHONY: envtest-assets
envtest-assets: $(ENVTEST_ASSETS)/kube-apiserver $(ENVTEST_ASSETS)/etcd $(ENVTEST_ASSETS)/kubectl ## Build kube-apiserver, etcd and kubectl from the Go module proxy into bin/k8s/.

$(ENVTEST_ASSETS)/%: hack/localcp/go.mod hack/localcp/go.sum hack/localcp/%/main.go
	@mkdir -p $(ENVTEST_ASSETS)
	@echo "Building $* v$(K8S_VERSION) from the Go module proxy (the first build of kube-apiserver takes several minutes)..."
	cd hack/localcp && go build -v -trimpath -ldflags "$(K8S_LDFLAGS)" -o $@.tmp ./$* 2>&1 | awk '/ / { print; next } { n++; if (n % 100 == 0) { printf "  ... %d packages compiled\n", n; fflush() } }' && mv $@.tmp $@

##@ Dependencies

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
HELM ?= $(LOCALBIN)/helm
KUSTOMIZE ?= $(LOCALBIN)/kustomize

CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
HELM_VERSION ?= v3.22.0
# HELM_K8S_MINOR is the Kubernetes version helm assumes without a cluster
# (helm template, lint): helm's own release builds stamp the minor of its
# client-go (v0.37 for v3.22.0); a plain go install would say 1.20, which the
# chart's kubeVersion (>=1.25) refuses.
HELM_K8S_MINOR ?= 37
HELM_LDFLAGS := $(foreach p,chartutil lint/rules,-X helm.sh/helm/v3/pkg/$(p).k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$(p).k8sVersionMinor=$(HELM_K8S_MINOR))
# v5.8.3 needs Go 1.27; v5.8.1 is the newest that builds with the Go of go.mod.
KUSTOMIZE_VERSION ?= v5.8.1

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
$(CONTROLLER_GEN): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Install golangci-lint into bin/.
$(GOLANGCI_LINT): | $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

.PHONY: helm
helm: | $(LOCALBIN) ## Install helm into bin/ (again when HELM_VERSION or HELM_K8S_MINOR change).
	$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION),$(HELM_LDFLAGS),-k8s1.$(HELM_K8S_MINOR))

.PHONY: kustomize
kustomize: | $(LOCALBIN) ## Install kustomize into bin/ (again when KUSTOMIZE_VERSION changes).
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

# go-install-tool will 'go install' any package with custom target and name of binary, if it doesn't exist
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
# $4 - optional -ldflags
# $5 - optional suffix of the versioned file name (say what $4 changes)
define go-install-tool
@[ -f "$(1)-$(3)$(5)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$$(realpath -- "$(1)-$(3)$(5)")" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f "$(1)" ;\
GOBIN="$(LOCALBIN)" go install $(if $(4),-ldflags "$(4)") $${package} ;\
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)$(5)" ;\
} ;\
ln -sf "$$(realpath -- "$(1)-$(3)$(5)")" "$(1)"
endef

##@ Reliability

# CHAOS_TIMEOUT bounds 'make test-chaos'.
CHAOS_TIMEOUT ?= 30m

.PHONY: test-chaos
test-chaos: envtest-assets ## Run the chaos tests (test/chaos) at full size: 300 AgentActions under API faults, manager SIGKILLs and a kube-apiserver restart (several minutes).
	CHAOS_FULL=1 KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test $(GO_TEST_ARGS) ./test/chaos/... -count=1 -v -timeout $(CHAOS_TIMEOUT)
