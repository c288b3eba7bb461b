# The one test command (README, .ci/run): vet, the whole suite with the race
# detector (unit, end-to-end with the real go command), then every fuzz
# target briefly.
GO ?= go
FUZZTIME ?= 10s

.PHONY: test vet unit fuzz build

test: vet unit fuzz

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

# Each target runs for FUZZTIME from its seeds; failures land in testdata/fuzz.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/airlock ./cmd/airlock
