# ifa — build, test, demo and benchmarks. `make help` lists the targets.
GO ?= go
# Go 1.26's SIMD package (simd/archsimd) is behind this experiment; builds without it use portable kernels.
export GOEXPERIMENT ?= simd
BIN := bin/ifa

.PHONY: help build test check fmt-check vet unit demo bench clean

help:
	@echo "make build  - build bin/ifa"
	@echo "make test   - gofmt check, go vet and all tests (what CI runs)"
	@echo "make demo   - the main job: a short IFACLR pretrain on Fashion-MNIST, then kNN and linear eval"
	@echo "make bench  - benchmarks"

build:
	$(GO) build -o $(BIN) ./cmd/ifa

test: check

check: fmt-check vet unit

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -timeout 60m ./...

demo: build
	./scripts/demo.sh

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

clean:
	rm -rf bin
