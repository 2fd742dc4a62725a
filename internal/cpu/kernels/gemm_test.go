package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// refGemm is the naive float64 triple loop: C = alpha·op(A)·op(B) + beta·C, plus for each element
// the magnitude |alpha|·Σ|a||b| + |beta·c| that bounds its rounding error.
func refGemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) (out, mag []float64) {
	out = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
				sa += math.Abs(av * bv)
			}
			v, mg := alpha*s, math.Abs(alpha)*sa
			if beta != 0 {
				v += beta * c[i*ldc+j]
				mg += math.Abs(beta * c[i*ldc+j])
			}
			out[i*n+j], mag[i*n+j] = v, mg
		}
	}
	return out, mag
}

// gemmCase is one randomized product; pad adds to each stride beyond the row length.
type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float64
	padA, padB     int
	padC           int
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%v,tB=%v,m=%d,n=%d,k=%d,alpha=%g,beta=%g,pad=%d/%d/%d",
		tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.padA, tc.padB, tc.padC)
}

// operands builds random A, B, C (as float64) with the case's layouts; C's padding holds a sentinel.
func (tc gemmCase) operands(rng *rand.Rand) (a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc = max(ac, 1)+tc.padA, max(bc, 1)+tc.padB, max(tc.n, 1)+tc.padC
	a = make([]float64, max(0, (ar-1)*lda+ac))
	b = make([]float64, max(0, (br-1)*ldb+bc))
	c = make([]float64, max(0, (tc.m-1)*ldc+tc.n))
	for i := range a {
		a[i] = rng.Float64()*2 - 1
	}
	for i := range b {
		b[i] = rng.Float64()*2 - 1
	}
	for i := range c {
		if i%ldc < tc.n {
			c[i] = rng.Float64()*2 - 1
		} else {
			c[i] = 12345
		}
	}
	return
}

func toF32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

func fromF32(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// checkResult compares got (with stride ldc) to the reference within the rounding bound
// (k+2)·eps·mag·4 and checks that C's padding kept its sentinel.
func checkResult(t *testing.T, label string, tc gemmCase, got []float64, ldc int, want, mag []float64, eps float64) {
	t.Helper()
	bad := 0
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc && i*ldc+j < len(got); j++ {
			g := got[i*ldc+j]
			if j >= tc.n {
				if g != 12345 {
					t.Errorf("%s %v: padding C[%d,%d] overwritten: %g", label, tc, i, j, g)
					return
				}
				continue
			}
			w, tol := want[i*tc.n+j], 4*float64(tc.k+2)*eps*mag[i*tc.n+j]+1e-30
			if !(math.Abs(g-w) <= tol) {
				if bad < 3 {
					t.Errorf("%s %v: C[%d,%d] = %g, want %g (tol %g)", label, tc, i, j, g, w, tol)
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s %v: %d wrong elements", label, tc, bad)
	}
}

// smallBlocks returns a copy of kern with tiny cache blocks so that small tests cross every block edge.
func smallBlocks[T float](kern *kernel[T]) *kernel[T] {
	k := *kern
	k.kc, k.mc, k.nc = 5, 2*k.mr, 3*k.nr
	k.name += "-tinyblocks"
	return &k
}

// randomCases returns shapes that cover 1×1, odd sizes, sizes around the tile and block sizes,
// all transposes, strides beyond the row length and several alpha/beta.
func randomCases(rng *rand.Rand, count int) []gemmCase {
	dims := []int{1, 2, 3, 5, 6, 7, 8, 13, 16, 17, 23, 31, 32, 33, 47, 64, 97}
	alphas := []float64{1, -1, 0.5, 2.25}
	betas := []float64{0, 1, -0.75, 2}
	var cases []gemmCase
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			cases = append(cases, gemmCase{transA: ta, transB: tb, m: 1, n: 1, k: 1, alpha: 1})
			for i := 0; i < count; i++ {
				cases = append(cases, gemmCase{
					transA: ta, transB: tb,
					m: dims[rng.IntN(len(dims))], n: dims[rng.IntN(len(dims))], k: dims[rng.IntN(len(dims))],
					alpha: alphas[rng.IntN(len(alphas))], beta: betas[rng.IntN(len(betas))],
					padA: rng.IntN(3) * 3, padB: rng.IntN(3) * 2, padC: rng.IntN(2) * 5,
				})
			}
		}
	}
	return cases
}

func TestSgemmAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var kernels []*kernel[float32]
	for _, k := range testKernelsF32() {
		kernels = append(kernels, k, smallBlocks(k))
	}
	for _, tc := range randomCases(rng, 25) {
		a, lda, b, ldb, c, ldc := tc.operands(rng)
		a32, b32 := toF32(a), toF32(b)
		// The reference uses the float32-rounded inputs.
		want, mag := refGemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, fromF32(a32), lda, fromF32(b32), ldb, float64(float32(tc.beta)), fromF32(toF32(c)), ldc)
		for _, kern := range kernels {
			for _, threads := range []int{1, 2, 3} {
				c32 := toF32(c)
				gemm(kern, aSource[float32]{trans: tc.transA, a: a32, lda: lda}, tc.transB, tc.m, tc.n, tc.k, float32(tc.alpha), b32, ldb, float32(tc.beta), c32, ldc, threads)
				checkResult(t, fmt.Sprintf("%s/threads=%d", kern.name, threads), tc, fromF32(c32), ldc, want, mag, 0x1p-24)
			}
		}
		// The public entry point.
		c32 := toF32(c)
		Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, float32(tc.alpha), a32, lda, b32, ldb, float32(tc.beta), c32, ldc)
		checkResult(t, "Sgemm", tc, fromF32(c32), ldc, want, mag, 0x1p-24)
	}
}

func TestDgemmAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var kernels []*kernel[float64]
	for _, k := range testKernelsF64() {
		kernels = append(kernels, k, smallBlocks(k))
	}
	for _, tc := range randomCases(rng, 12) {
		a, lda, b, ldb, c, ldc := tc.operands(rng)
		want, mag := refGemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
		for _, kern := range kernels {
			for _, threads := range []int{1, 2} {
				got := append([]float64(nil), c...)
				gemm(kern, aSource[float64]{trans: tc.transA, a: a, lda: lda}, tc.transB, tc.m, tc.n, tc.k, tc.alpha, b, ldb, tc.beta, got, ldc, threads)
				checkResult(t, fmt.Sprintf("%s/threads=%d", kern.name, threads), tc, got, ldc, want, mag, 0x1p-53)
			}
		}
		got := append([]float64(nil), c...)
		Dgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got, ldc)
		checkResult(t, "Dgemm", tc, got, ldc, want, mag, 0x1p-53)
	}
}

// TestSgemmLarge crosses the production block sizes (k > kc, m > mc) with both goroutines, and
// products wide enough to be split by columns (gemmColumns).
func TestSgemmLarge(t *testing.T) { forEachISA(t, testSgemmLarge) }

func testSgemmLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []gemmCase{
		{m: 301, n: 275, k: 530, alpha: 1, beta: 0.5, padA: 1, padB: 2, padC: 3},
		{transA: true, transB: true, m: 150, n: 4100, k: 9, alpha: -1, beta: 0},
		{transB: true, m: 64, n: 70, k: 777, alpha: 0.25, beta: 1},
		{transB: true, m: 45, n: 2090, k: 300, alpha: -0.5, beta: 0.75, padB: 1, padC: 2}, // split by columns
		{m: 200, n: 1070, k: 260, alpha: 1, beta: 0},                                      // split by columns, packed A
	} {
		if testing.Short() && tc.n > 1000 {
			continue
		}
		a, lda, b, ldb, c, ldc := tc.operands(rng)
		a32, b32 := toF32(a), toF32(b)
		want, mag := refGemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, fromF32(a32), lda, fromF32(b32), ldb, tc.beta, fromF32(toF32(c)), ldc)
		c32 := toF32(c)
		Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, float32(tc.alpha), a32, lda, b32, ldb, float32(tc.beta), c32, ldc)
		checkResult(t, "Sgemm", tc, fromF32(c32), ldc, want, mag, 0x1p-24)
	}
}

// TestClosedForm checks exact results: A·I = A, and a product of all-ones matrices equals k.
func TestClosedForm(t *testing.T) { forEachISA(t, testClosedForm) }

func testClosedForm(t *testing.T) {
	const m, k = 37, 29
	a := make([]float32, m*k)
	for i := range a {
		a[i] = float32(i%11) - 5
	}
	id := make([]float32, k*k)
	for i := 0; i < k; i++ {
		id[i*k+i] = 1
	}
	c := make([]float32, m*k)
	Sgemm(false, false, m, k, k, 1, a, k, id, k, 0, c, k)
	for i := range a {
		if c[i] != a[i] {
			t.Fatalf("A·I: C[%d] = %g, want %g", i, c[i], a[i])
		}
	}
	ones := make([]float32, 300*300)
	for i := range ones {
		ones[i] = 1
	}
	out := make([]float32, 40*50)
	Sgemm(true, false, 40, 50, 300, 1, ones, 40, ones, 50, 0, out, 50)
	for i, v := range out {
		if v != 300 {
			t.Fatalf("ones: C[%d] = %g, want 300", i, v)
		}
	}
}

// TestSpecialScalars checks that beta == 0 ignores NaNs in C, and that alpha == 0 or k == 0 give
// C = beta·C without reading A and B.
func TestSpecialScalars(t *testing.T) {
	nan32 := float32(math.NaN())
	for _, kern := range testKernelsF32() {
		for _, sz := range [][3]int{{3, 3, 3}, {20, 37, 41}, {130, 70, 300}} {
			m, n, k := sz[0], sz[1], sz[2]
			a := make([]float32, m*k)
			b := make([]float32, k*n)
			for i := range a {
				a[i] = 1
			}
			for i := range b {
				b[i] = 2
			}
			c := make([]float32, m*n)
			for i := range c {
				c[i] = nan32
			}
			gemm(kern, aSource[float32]{a: a, lda: k}, false, m, n, k, 1, b, n, 0, c, n, 2)
			for i, v := range c {
				if v != float32(2*k) {
					t.Fatalf("%s beta=0 %v: C[%d] = %g, want %d", kern.name, sz, i, v, 2*k)
				}
			}
			for i := range a {
				a[i] = nan32
			}
			for i := range c {
				c[i] = 3
			}
			gemm(kern, aSource[float32]{a: a, lda: k}, false, m, n, k, 0, b, n, 2, c, n, 2)
			for i, v := range c {
				if v != 6 {
					t.Fatalf("%s alpha=0 %v: C[%d] = %g, want 6", kern.name, sz, i, v)
				}
			}
			gemm(kern, aSource[float32]{lda: 1}, false, m, n, 0, 1, nil, n, 0.5, c, n, 2)
			for i, v := range c {
				if v != 3 {
					t.Fatalf("%s k=0 %v: C[%d] = %g, want 3", kern.name, sz, i, v)
				}
			}
		}
	}
	c := []float64{math.NaN(), math.NaN()}
	Dgemm(false, false, 1, 2, 1, 1, []float64{2}, 1, []float64{3, 4}, 2, 0, c, 2)
	if c[0] != 6 || c[1] != 8 {
		t.Fatalf("Dgemm beta=0 with NaN C: got %v, want [6 8]", c)
	}
}

func TestInvalidArgumentsPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func()
		want string
	}{
		{"negative", func() { Sgemm(false, false, -1, 1, 1, 1, nil, 1, nil, 1, 0, nil, 1) }, "negative size"},
		{"lda", func() {
			Sgemm(false, false, 2, 2, 3, 1, make([]float32, 6), 2, make([]float32, 6), 2, 0, make([]float32, 4), 2)
		}, "A stride 2 < row length 3"},
		{"short C", func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 4), 2, make([]float32, 4), 2, 0, make([]float32, 3), 2)
		}, "C has 3 elements, needs 4"},
		{"short B", func() {
			Dgemm(false, true, 2, 3, 2, 1, make([]float64, 4), 2, make([]float64, 5), 2, 0, make([]float64, 6), 3)
		}, "B has 5 elements, needs 6"},
	} {
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Errorf("%s: panic %v, want one containing %q", tc.name, r, tc.want)
				}
			}()
			tc.call()
		}()
	}
}

// TestSplitK covers long sums with small outputs (split along k across goroutines), for dense A
// in both layouts, beta = 0 over a NaN-filled C and beta ≠ 0.
func TestSplitK(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, tc := range []gemmCase{
		{transA: true, m: 40, n: 33, k: 2100, alpha: 1, beta: 0.5, padA: 3, padC: 2},
		{transB: true, m: 21, n: 50, k: 1500, alpha: -0.5, beta: 0, padB: 1},
		{m: 7, n: 9, k: 4096 + 13, alpha: 2, beta: 1},
	} {
		a, lda, b, ldb, c, ldc := tc.operands(rng)
		a32, b32 := toF32(a), toF32(b)
		want, mag := refGemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, fromF32(a32), lda, fromF32(b32), ldb, tc.beta, fromF32(toF32(c)), ldc)
		for _, kern := range testKernelsF32() {
			for _, threads := range []int{2, 3, 8} {
				c32 := toF32(c)
				if tc.beta == 0 {
					for i := range c32 {
						if i%ldc < tc.n {
							c32[i] = float32(math.NaN())
						}
					}
				}
				gemm(kern, aSource[float32]{trans: tc.transA, a: a32, lda: lda}, tc.transB, tc.m, tc.n, tc.k, float32(tc.alpha), b32, ldb, float32(tc.beta), c32, ldc, threads)
				checkResult(t, fmt.Sprintf("%s/threads=%d", kern.name, threads), tc, fromF32(c32), ldc, want, mag, 0x1p-24)
			}
		}
	}
}

// TestBInPlaceSameBits checks that reading B in place (kernel.fnB, for products of at most
// bInPlaceMaxRows rows) gives the bits of the packed path, with partial row and column tiles,
// k past the cache block, row strides beyond the row length, beta ≠ 0 and 1–3 goroutines, and
// that such shapes take the in-place path.
func TestBInPlaceSameBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, kern := range testKernelsF32() {
		if kern.fnB == nil {
			continue
		}
		packed := *kern
		packed.fnB = nil
		for _, tc := range []gemmCase{
			{m: 1, n: 32, k: 1, alpha: 1},
			{m: 14, n: 64, k: 17, alpha: 1, beta: 1},
			{m: 13, n: 45, k: 300, alpha: 1, beta: -0.5, padB: 3},
			{m: 64, n: 3072, k: 256, alpha: 1},
			{m: 128, n: 100, k: 513, alpha: 1, beta: 2, padA: 1, padB: 7, padC: 2},
			{m: bInPlaceMaxRows, n: 33, k: 64, alpha: 1, transA: true},
		} {
			a, lda, b, ldb, c, ldc := tc.operands(rng)
			a32, b32 := toF32(a), toF32(b)
			if !bInPlace(kern, aSource[float32]{trans: tc.transA, a: a32, lda: lda}, bSource[float32]{b: b32, ldb: ldb}, tc.m, 1) {
				t.Fatalf("%v: does not read B in place", tc)
			}
			for _, threads := range []int{1, 2, 3} {
				want, got := toF32(c), toF32(c)
				gemm(&packed, aSource[float32]{trans: tc.transA, a: a32, lda: lda}, false, tc.m, tc.n, tc.k, 1, b32, ldb, float32(tc.beta), want, ldc, threads)
				gemm(kern, aSource[float32]{trans: tc.transA, a: a32, lda: lda}, false, tc.m, tc.n, tc.k, 1, b32, ldb, float32(tc.beta), got, ldc, threads)
				for i := range want {
					if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
						t.Fatalf("%s %v threads=%d: C[%d] = %v in place, %v packed", kern.name, tc, threads, i, got[i], want[i])
					}
				}
			}
		}
	}
}
