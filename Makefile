# imgpipe — the commands a developer needs. See README.md.
GO      ?= go
BIN     := bin/imgpipe
PKGS    := ./...

.PHONY: all build test vet fmt-check demo bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/imgpipe

# The README's test command: format, vet, then every test (real components
# required when IMGPIPE_CI=1, skipped with a reason otherwise).
test: fmt-check vet
	$(GO) test -timeout 25m $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The main job: the end-to-end demo on local components.
demo: build
	./scripts/demo.sh

bench: build
	./bench/disk-convert.sh

clean:
	rm -rf bin out demo-out
