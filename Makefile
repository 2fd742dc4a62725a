# ifa — build, test, demo and benchmarks. `make help` lists the targets.
GO ?= go
# No GOEXPERIMENT is needed: the CPU backend's vector kernels are Go assembly chosen at run time
# (IFA_CPU_ISA=avx512|avx2|generic forces a path), so `go build` and `go install` are as fast as this.
BIN := bin/ifa

.PHONY: help build test check fmt-check vet unit fuzz demo bench bench-peers clean

help:
	@echo "make build  - build bin/ifa"
	@echo "make test   - gofmt check, go vet, all tests and a short fuzz of the file parsers (what CI runs)"
	@echo "make fuzz   - fuzz the torch.save, safetensors and image-cache readers longer (FUZZTIME=60s)"
	@echo "make demo   - the main job: a short IFACLR pretrain on Fashion-MNIST, then kNN and linear eval"
	@echo "make bench  - training-step benchmarks (bench/results.md)"
	@echo "make bench-peers - the same benchmarks, ifa and PyTorch side by side"

build:
	$(GO) build -o $(BIN) ./cmd/ifa

test: check

check: fmt-check vet unit fuzz

# The untrusted-file parsers (package torchio): their seed corpora run with the unit tests; this
# searches FUZZTIME per target beyond them.
FUZZTIME ?= 5s
fuzz:
	@for f in FuzzPickle FuzzParse FuzzSafetensors; do \
		$(GO) test ./torchio -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
	done
	$(GO) test ./data -run '^$$' -fuzz '^FuzzReadCache$$' -fuzztime $(FUZZTIME)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -timeout 60m ./...

demo: build
	./scripts/demo.sh

# Training-step benchmarks (bench/bench.sh): resnet8x4 none/kd/ifacd at batch 64 on 32x32x3 and the
# ViT vit:nano with lwclr and with cross-entropy at batch 128 on 28x28x1; writes bench/results.md.
# Not part of `make test`.
bench: build
	./bench/bench.sh

# The same set, ifa and the PyTorch peer (bench/peers/train_step.py; /usr/bin/python3 with Debian's
# python3-torch) interleaved, side by side with the ratio; writes bench/results-peers.md. The peer runs
# without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, so OpenBLAS picks its AVX-512 kernels where it can;
# its convolutions run on oneDNN. ifa's kernel path (IFA_CPU_ISA) is in the results' header.
bench-peers: build
	./bench/bench.sh --peers

clean:
	rm -rf bin
