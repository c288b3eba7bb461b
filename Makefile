# The one test command (README, .ci/run): vet, the whole suite with the race
# detector (unit, end-to-end with the real go, npm, pnpm, yarn, crane, skopeo
# and cosign clients), then every fuzz target briefly. The Go-built clients,
# pnpm and yarn are installed at pinned versions into .tools/bin; skopeo and npm come
# from the system's packages (installed here when run as root).
GO ?= go
FUZZTIME ?= 10s

TOOLS := $(CURDIR)/.tools
export PATH := $(TOOLS)/bin:$(PATH)
export GOTOOLCHAIN := local

CRANE_VERSION := v0.22.1
COSIGN_VERSION := v2.6.5
# The OCI distribution-spec conformance suite: v1.1, and the redesign.
CONFORMANCE_V1 := v0.0.0-20231101194043-f2182352d4cc
CONFORMANCE_V2 := v0.0.0-20260831232431-97274622c111
PNPM_VERSION := 10.34.9
YARN_VERSION := 1.22.22

.PHONY: test vet unit fuzz build tools skopeo npm

test: vet tools unit fuzz

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

# Each target runs for FUZZTIME from its seeds; failures land in testdata/fuzz
# (.ci/fuzz.sh: it also retries once Go 1.26's fuzztime deadline race).
fuzz:
	GO=$(GO) ./.ci/fuzz.sh $(FUZZTIME)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/airlock ./cmd/airlock

tools: skopeo npm $(TOOLS)/crane@$(CRANE_VERSION) $(TOOLS)/cosign@$(COSIGN_VERSION) \
	$(TOOLS)/conformance@$(CONFORMANCE_V1) $(TOOLS)/conformance@$(CONFORMANCE_V2) \
	$(TOOLS)/pnpm@$(PNPM_VERSION) $(TOOLS)/yarn@$(YARN_VERSION)

# skopeo is not go-installable (it needs C libraries): Debian's package.
skopeo:
	@command -v skopeo >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo; \
		else echo "skopeo is needed by the e2e tests: install it (Debian/Ubuntu: apt-get install skopeo)" >&2; exit 1; fi; }

# npm (with Node.js) drives the npm end-to-end tests: Debian's package.
npm:
	@command -v npm >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; \
		else echo "npm is needed by the e2e tests: install it (Debian/Ubuntu: apt-get install npm)" >&2; exit 1; fi; }

# A stamp named for the version reinstalls when the pin changes.
$(TOOLS)/crane@%:
	GOBIN=$(TOOLS)/bin $(GO) install github.com/google/go-containerregistry/cmd/crane@$*
	@touch $@

$(TOOLS)/pnpm@%: | npm
	rm -rf $(TOOLS)/pnpm-$* && mkdir -p $(TOOLS)/bin
	npm install --prefix $(TOOLS)/pnpm-$* --no-audit --no-fund --loglevel=error pnpm@$*
	ln -sf $(TOOLS)/pnpm-$*/node_modules/.bin/pnpm $(TOOLS)/bin/pnpm
	@touch $@

$(TOOLS)/yarn@%: | npm
	rm -rf $(TOOLS)/yarn-$* && mkdir -p $(TOOLS)/bin
	npm install --prefix $(TOOLS)/yarn-$* --no-audit --no-fund --loglevel=error yarn@$*
	ln -sf $(TOOLS)/yarn-$*/node_modules/.bin/yarn $(TOOLS)/bin/yarn
	@touch $@

$(TOOLS)/cosign@%:
	GOBIN=$(TOOLS)/bin $(GO) install github.com/sigstore/cosign/v2/cmd/cosign@$*
	@touch $@

# The suite is a test package: build its test binary in a module of its own
# so its dependencies stay out of ours.
$(TOOLS)/conformance@%:
	rm -rf $(TOOLS)/src/conformance-$* && mkdir -p $(TOOLS)/src/conformance-$*
	cd $(TOOLS)/src/conformance-$* && printf 'module airlock.test/conformance\n\ngo 1.21\n' >go.mod && \
		GOFLAGS="-mod=mod -buildvcs=false" $(GO) get -t github.com/opencontainers/distribution-spec/conformance@$* && \
		GOFLAGS="-mod=mod -buildvcs=false" $(GO) test -c -o $(TOOLS)/bin/conformance-$*.test github.com/opencontainers/distribution-spec/conformance
	@touch $@
