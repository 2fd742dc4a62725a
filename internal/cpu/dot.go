package cpu

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

type dotParams struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
}

// DotGeneral implements backends.Builder.
func (b *Builder) DotGeneral(lhs backends.Op, lhsContractingAxes, lhsBatchAxes []int,
	rhs backends.Op, rhsContractingAxes, rhsBatchAxes []int) (backends.Op, error) {
	ns, err := b.nodes2("DotGeneral", lhs, rhs)
	if err != nil {
		return nil, err
	}
	ls, rs := ns[0].shape, ns[1].shape
	if ls.DType != rs.DType || ls.DType == dtypes.Bool {
		return nil, fmt.Errorf("cpu: DotGeneral(%s, %s): dtypes must match and be numeric", ls, rs)
	}
	if len(lhsContractingAxes) != len(rhsContractingAxes) || len(lhsBatchAxes) != len(rhsBatchAxes) {
		return nil, fmt.Errorf("cpu: DotGeneral(%s, %s): contracting %v/%v or batch %v/%v axes counts differ",
			ls, rs, lhsContractingAxes, rhsContractingAxes, lhsBatchAxes, rhsBatchAxes)
	}
	check := func(s shapes.Shape, contracting, batch []int) ([]int, error) {
		used := make([]bool, s.Rank())
		for _, a := range append(slices.Clone(contracting), batch...) {
			if a < 0 || a >= s.Rank() || used[a] {
				return nil, fmt.Errorf("cpu: DotGeneral(%s, %s): invalid or repeated axis %d", ls, rs, a)
			}
			used[a] = true
		}
		var cross []int
		for a, u := range used {
			if !u {
				cross = append(cross, a)
			}
		}
		return cross, nil
	}
	lCross, err := check(ls, lhsContractingAxes, lhsBatchAxes)
	if err != nil {
		return nil, err
	}
	rCross, err := check(rs, rhsContractingAxes, rhsBatchAxes)
	if err != nil {
		return nil, err
	}
	var dims []int
	for i := range lhsBatchAxes {
		if ls.Dimensions[lhsBatchAxes[i]] != rs.Dimensions[rhsBatchAxes[i]] {
			return nil, fmt.Errorf("cpu: DotGeneral(%s, %s): batch axes %d/%d differ", ls, rs, lhsBatchAxes[i], rhsBatchAxes[i])
		}
		dims = append(dims, ls.Dimensions[lhsBatchAxes[i]])
	}
	for i := range lhsContractingAxes {
		if ls.Dimensions[lhsContractingAxes[i]] != rs.Dimensions[rhsContractingAxes[i]] {
			return nil, fmt.Errorf("cpu: DotGeneral(%s, %s): contracting axes %d/%d differ", ls, rs,
				lhsContractingAxes[i], rhsContractingAxes[i])
		}
	}
	for _, a := range lCross {
		dims = append(dims, ls.Dimensions[a])
	}
	for _, a := range rCross {
		dims = append(dims, rs.Dimensions[a])
	}
	p := dotParams{slices.Clone(lhsContractingAxes), slices.Clone(lhsBatchAxes), slices.Clone(rhsContractingAxes),
		slices.Clone(rhsBatchAxes)}
	return b.add(backends.OpTypeDotGeneral, shapes.Make(ls.DType, dims...), p, ns...), nil
}

// Dot implements backends.Builder: vector·vector, matrix·vector or matrix·matrix.
func (b *Builder) Dot(lhs, rhs backends.Op) (backends.Op, error) {
	ns, err := b.nodes2("Dot", lhs, rhs)
	if err != nil {
		return nil, err
	}
	lr, rr := ns[0].shape.Rank(), ns[1].shape.Rank()
	if lr < 1 || lr > 2 || rr < 1 || rr > 2 {
		return nil, fmt.Errorf("cpu: Dot(%s, %s): ranks must be 1 or 2", ns[0].shape, ns[1].shape)
	}
	return b.DotGeneral(lhs, []int{lr - 1}, nil, rhs, []int{0}, nil)
}

// gemm is C[m×n] = op(A)·op(B) (beta 0) or C += op(A)·op(B) (beta 1), row-major with strides.
func gemm[T floatT](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch av := any(a).(type) {
	case []float32:
		kernels.Sgemm(transA, transB, m, n, k, 1, av, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		kernels.Dgemm(transA, transB, m, n, k, 1, av, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// dotLayout says how an operand of DotGeneral is read as a batch of matrices.
type dotLayout struct {
	perm  []int // permutation to the canonical layout, nil when the operand is used as is
	trans bool  // the (possibly permuted) matrices are stored transposed
}

func isIdentity(perm []int) bool {
	for i, p := range perm {
		if i != p {
			return false
		}
	}
	return true
}

// crossAxes lists the axes that are neither contracting nor batch, in increasing order.
func crossAxes(rank int, contracting, batch []int) []int {
	var cross []int
	for a := 0; a < rank; a++ {
		if !slices.Contains(contracting, a) && !slices.Contains(batch, a) {
			cross = append(cross, a)
		}
	}
	return cross
}

// chooseLayout picks, for an operand whose canonical layout is batch++first++second, either that
// layout, its transposed batch++second++first when that is the memory order, or a permutation.
func chooseLayout(batch, first, second []int) dotLayout {
	p1 := slices.Concat(batch, first, second)
	if isIdentity(p1) {
		return dotLayout{}
	}
	p2 := slices.Concat(batch, second, first)
	if isIdentity(p2) {
		return dotLayout{trans: true}
	}
	return dotLayout{perm: p1}
}

func prodDims(dims []int, axes []int) int {
	p := 1
	for _, a := range axes {
		p *= dims[a]
	}
	return p
}

func execDotGeneral(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	p := n.params.(dotParams)
	lb, rb := ins[0].buf, ins[1].buf
	ld, rd := lb.shape.Dimensions, rb.shape.Dimensions
	lCross := crossAxes(len(ld), p.lhsContracting, p.lhsBatch)
	rCross := crossAxes(len(rd), p.rhsContracting, p.rhsBatch)
	B := prodDims(ld, p.lhsBatch)
	M := prodDims(ld, lCross)
	K := prodDims(ld, p.lhsContracting)
	N := prodDims(rd, rCross)
	lLay := chooseLayout(p.lhsBatch, lCross, p.lhsContracting) // [B, M, K]
	rLay := chooseLayout(p.rhsBatch, p.rhsContracting, rCross) // [B, K, N]
	out := ex.b.newBuffer(n.shape)
	var err error
	switch l := lb.flat.(type) {
	case []float32:
		err = dotFloat(ex, out.flat.([]float32), l, rb.flat.([]float32), ld, rd, lLay, rLay, B, M, K, N)
	case []float64:
		err = dotFloat(ex, out.flat.([]float64), l, rb.flat.([]float64), ld, rd, lLay, rLay, B, M, K, N)
	default:
		err = dotNaiveAny(out.flat, lb.flat, rb.flat, ld, rd, p, lCross, rCross, B, M, K, N)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// permuted returns flat (dims) permuted by perm into a pooled buffer, and a release function.
func permuted[T any](ex *execState, flat []T, dims, perm []int) ([]T, func()) {
	if perm == nil {
		return flat, func() {}
	}
	var zero T
	dt := dtypeOfFlat(any(flat))
	tmp := ex.b.pool.get(dt, len(flat)).([]T)
	_ = zero
	_ = transposeFlat(tmp, flat, dims, perm)
	return tmp, func() { ex.b.pool.put(dt, tmp) }
}

func dotFloat[T floatT](ex *execState, out, l, r []T, ld, rd []int, lLay, rLay dotLayout, B, M, K, N int) error {
	if K == 0 {
		clear(out)
		return nil
	}
	a, relA := permuted(ex, l, ld, lLay.perm)
	defer relA()
	b, relB := permuted(ex, r, rd, rLay.perm)
	defer relB()
	lda := K
	if lLay.trans {
		lda = M
	}
	ldb := N
	if rLay.trans {
		ldb = K
	}
	if o32, ok := any(out).([]float32); ok && useSmallDot32(M, N, K) {
		a32, b32 := any(a).([]float32), any(b).([]float32)
		parallelFor(B, max(1, (1<<16)/max(1, M*N*K)), func(s, e int) {
			pb := make([]float32, K*((N+7)/8*8))
			for i := s; i < e; i++ {
				dotSmall32(lLay.trans, rLay.trans, M, N, K, a32[i*M*K:(i+1)*M*K], lda, b32[i*K*N:(i+1)*K*N], ldb,
					o32[i*M*N:(i+1)*M*N], N, pb)
			}
		})
		return nil
	}
	one := func(i int) {
		gemm(lLay.trans, rLay.trans, M, N, K, a[i*M*K:(i+1)*M*K], lda, b[i*K*N:(i+1)*K*N], ldb, 0,
			out[i*M*N:(i+1)*M*N], N)
	}
	if B > 1 && M*N*K < 1<<18 {
		parallelFor(B, max(1, (1<<18)/max(1, M*N*K)), func(s, e int) {
			for i := s; i < e; i++ {
				one(i)
			}
		})
		return nil
	}
	for i := 0; i < B; i++ {
		one(i)
	}
	return nil
}

// useSmallDot32 reports whether a float32 product [M×K]·[K×N] runs on dotSmall32: narrow outputs
// (N ≤ 24, such as attention heads' scores and values) of small products, where packing for the
// blocked GEMM costs more than the product.
func useSmallDot32(M, N, K int) bool {
	return hasSmallDot32() && N <= 24 && M*N*K <= 1<<16
}

// dotNaiveAny computes DotGeneral for non-float dtypes with plain loops (through float64 for
// accumulation of small integers).
func dotNaiveAny(out, l, r any, ld, rd []int, p dotParams, lCross, rCross []int, B, M, K, N int) error {
	switch o := out.(type) {
	case []int32:
		dotNaive(o, l.([]int32), r.([]int32), ld, rd, p, lCross, rCross, B, M, K, N)
	case []int64:
		dotNaive(o, l.([]int64), r.([]int64), ld, rd, p, lCross, rCross, B, M, K, N)
	case []int8:
		dotNaive(o, l.([]int8), r.([]int8), ld, rd, p, lCross, rCross, B, M, K, N)
	case []int16:
		dotNaive(o, l.([]int16), r.([]int16), ld, rd, p, lCross, rCross, B, M, K, N)
	case []uint8:
		dotNaive(o, l.([]uint8), r.([]uint8), ld, rd, p, lCross, rCross, B, M, K, N)
	case []uint16:
		dotNaive(o, l.([]uint16), r.([]uint16), ld, rd, p, lCross, rCross, B, M, K, N)
	case []uint32:
		dotNaive(o, l.([]uint32), r.([]uint32), ld, rd, p, lCross, rCross, B, M, K, N)
	case []uint64:
		dotNaive(o, l.([]uint64), r.([]uint64), ld, rd, p, lCross, rCross, B, M, K, N)
	default:
		return fmt.Errorf("DotGeneral of %T not supported", out)
	}
	return nil
}

func dotNaive[T numT](out, l, r []T, ld, rd []int, p dotParams, lCross, rCross []int, B, M, K, N int) {
	lc := make([]T, len(l))
	_ = transposeFlat(lc, l, ld, slices.Concat(p.lhsBatch, lCross, p.lhsContracting))
	rc := make([]T, len(r))
	_ = transposeFlat(rc, r, rd, slices.Concat(p.rhsBatch, p.rhsContracting, rCross))
	for bi := 0; bi < B; bi++ {
		for i := 0; i < M; i++ {
			for j := 0; j < N; j++ {
				var s T
				for k := 0; k < K; k++ {
					s += lc[(bi*M+i)*K+k] * rc[(bi*K+k)*N+j]
				}
				out[(bi*M+i)*N+j] = s
			}
		}
	}
}
