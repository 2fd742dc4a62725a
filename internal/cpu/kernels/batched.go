package kernels

import (
	"fmt"
	"sync"
)

// SgemmBatched computes, for every t in [0, batch), C_t = alpha·op(A_t)·op(B_t) + beta·C_t where
// A_t starts at a[t·strideA], B_t at b[t·strideB] and C_t at c[t·strideC]; each product follows the
// Sgemm contract (op(A_t) m×k with row stride lda, op(B_t) k×n with ldb, C_t m×n with ldc).
//
// A stride of 0 for A or B reuses one matrix for every product (e.g. shared weights). The C_t must
// not overlap: strideC ≥ (m-1)·ldc+n when batch > 1. Small products (such as per-head attention
// matrices) run in parallel across the batch, one goroutine per core; large ones run one after
// the other, each split over all cores. Invalid arguments panic, as for Sgemm.
func SgemmBatched(transA, transB bool, batch, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int) {
	gemmBatched(cur().sgemm(n), "SgemmBatched", transA, transB, batch, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, Threads())
}

// DgemmBatched is the float64 analogue of SgemmBatched.
func DgemmBatched(transA, transB bool, batch, m, n, k int, alpha float64, a []float64, lda, strideA int, b []float64, ldb, strideB int, beta float64, c []float64, ldc, strideC int) {
	gemmBatched(cur().d, "DgemmBatched", transA, transB, batch, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, Threads())
}

// gemmBatched validates and runs a strided batch of products on up to threads goroutines.
func gemmBatched[T float](kern *kernel[T], name string, transA, transB bool, batch, m, n, k int, alpha T, a []T, lda, strideA int, b []T, ldb, strideB int, beta T, c []T, ldc, strideC int, threads int) {
	if batch < 0 || strideA < 0 || strideB < 0 || strideC < 0 {
		panic(fmt.Errorf("kernels: %s: negative batch %d or stride (%d, %d, %d)", name, batch, strideA, strideB, strideC))
	}
	if batch == 0 {
		return
	}
	if batch > 1 && m > 0 && n > 0 && strideC < (m-1)*ldc+n {
		panic(fmt.Errorf("kernels: %s: C stride %d makes the %d×%d outputs (row stride %d) overlap", name, strideC, m, n, ldc))
	}
	// Validate the last product, whose operands end furthest into the slices (strides are ≥ 0).
	last := batch - 1
	if m > 0 && n > 0 {
		if len(c) < last*strideC {
			panic(fmt.Errorf("kernels: %s: C has %d elements, product %d starts at %d", name, len(c), last, last*strideC))
		}
		if k > 0 && (len(a) < last*strideA || len(b) < last*strideB) {
			panic(fmt.Errorf("kernels: %s: A (%d elements) or B (%d elements) too short for product %d", name, len(a), len(b), last))
		}
	}
	at := func(s []T, off int) []T {
		if off >= len(s) {
			return nil
		}
		return s[off:]
	}
	checkArgs(name, transA, transB, m, n, k, at(a, last*strideA), lda, at(b, last*strideB), ldb, at(c, last*strideC), ldc)
	one := func(t, threads int) {
		src := aSource[T]{trans: transA, a: at(a, t*strideA), lda: lda}
		gemm(kern, src, transB, m, n, k, alpha, at(b, t*strideB), ldb, beta, at(c, t*strideC), ldc, threads)
	}
	flops := 2 * m * n * k
	if threads <= 1 || batch == 1 || flops >= 2*minFlopsPerGemmThread {
		// Products big enough to split (minFlopsPerGemmThread) one after the other.
		threads = min(threads, max(1, flops/minFlopsPerGemmThread))
		for t := 0; t < batch; t++ {
			one(t, threads)
		}
		return
	}
	threads = min(threads, batch, max(1, flops*batch/minFlopsPerThread))
	var wg sync.WaitGroup
	for w := 0; w < threads; w++ {
		lo, hi := batch*w/threads, batch*(w+1)/threads
		wg.Go(func() {
			for t := lo; t < hi; t++ {
				one(t, 1)
			}
		})
	}
	wg.Wait()
}
