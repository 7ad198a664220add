# imgpipe — the commands a developer needs. See README.md.
GO      ?= go
BIN     := bin/imgpipe
PKGS    := ./...

.PHONY: all build test vet fmt-check cross fuzz demo demo-boot bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/imgpipe

# The README's test command: format, vet, then every test (real components
# required when IMGPIPE_CI=1, skipped with a reason otherwise).
test: fmt-check vet cross
	$(GO) test -timeout 25m $(PKGS)

# Every fuzz target for FUZZTIME each (scripts/fuzz.sh says how a crasher
# is kept). 24 targets x 10s take about 6 minutes on 2 cores; FUZZTIME=60s
# for a soak.
FUZZTIME ?= 10s
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

vet:
	$(GO) vet $(PKGS)

# The agent runs on Windows Hyper-V guests too: the whole CLI must cross-compile.
cross:
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/imgpipe

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The main job: the end-to-end demo on local components.
demo: build
	./scripts/demo.sh

bench: build
	./bench/disk-convert.sh
	./bench/upload.sh
	./bench/drift.sh

clean:
	rm -rf bin out demo-out
