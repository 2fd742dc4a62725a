//go:build amd64 && !purego

package cpu

import "github.com/gomlx/gomlx/backends"

// binKernel32 returns the 8-lane float32 segment kernel of a binary arithmetic op (the contract
// of floatBinKernel: an operand flagged scalar is a 1-element slice broadcast over out), or nil
// when the op has none or the active path lacks AVX2/FMA. Results are bit for bit those of the
// scalar loops: each lane does the same single IEEE operation, and Max/Min follow Go's max/min
// (NaN wins, +0 above -0).
func binKernel32(op backends.OpType) func(out, a []float32, aS bool, b []float32, bS bool) {
	if !vec8() {
		return nil
	}
	switch op {
	case backends.OpTypeAdd:
		return add32v
	case backends.OpTypeSub:
		return sub32v
	case backends.OpTypeMul:
		return mul32v
	case backends.OpTypeDiv:
		return div32v
	case backends.OpTypeMax:
		return max32v
	case backends.OpTypeMin:
		return min32v
	}
	return nil
}

// binAsm is one op's vector loops for the layouts vector·vector, vector·scalar, scalar·vector.
type binAsm [3]func(out, a, b *float32, n int)

// binBlocks runs the vector loop of the layout on the first multiple of 8 elements of out and
// returns how many it did (0 when both operands are scalars).
func binBlocks(k *binAsm, out, a []float32, aS bool, b []float32, bS bool) int {
	n := len(out)
	n8 := n &^ 7
	if n8 == 0 {
		return 0
	}
	switch {
	case !aS && !bS:
		_, _ = a[n8-1], b[n8-1]
		k[0](&out[0], &a[0], &b[0], n8)
	case !aS:
		_, _ = a[n8-1], b[0]
		k[1](&out[0], &a[0], &b[0], n8)
	case !bS:
		_, _ = a[0], b[n8-1]
		k[2](&out[0], &a[0], &b[0], n8)
	default:
		return 0
	}
	return n8
}

var (
	addAsm = binAsm{binAddVVAVX2, binAddVSAVX2, binAddSVAVX2}
	subAsm = binAsm{binSubVVAVX2, binSubVSAVX2, binSubSVAVX2}
	mulAsm = binAsm{binMulVVAVX2, binMulVSAVX2, binMulSVAVX2}
	divAsm = binAsm{binDivVVAVX2, binDivVSAVX2, binDivSVAVX2}
	maxAsm = binAsm{binMaxVVAVX2, binMaxVSAVX2, binMaxSVAVX2}
	minAsm = binAsm{binMinVVAVX2, binMinVSAVX2, binMinSVAVX2}
)

// add32v writes a + b (8 lanes at a time; the layouts of binKernel32).
func add32v(out, a []float32, aS bool, b []float32, bS bool) {
	for i := binBlocks(&addAsm, out, a, aS, b, bS); i < len(out); i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = x + y
	}
}

// sub32v writes a - b (8 lanes at a time; the layouts of binKernel32).
func sub32v(out, a []float32, aS bool, b []float32, bS bool) {
	for i := binBlocks(&subAsm, out, a, aS, b, bS); i < len(out); i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = x - y
	}
}

// mul32v writes a * b (8 lanes at a time; the layouts of binKernel32).
func mul32v(out, a []float32, aS bool, b []float32, bS bool) {
	for i := binBlocks(&mulAsm, out, a, aS, b, bS); i < len(out); i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = x * y
	}
}

// div32v writes a / b (8 lanes at a time; the layouts of binKernel32).
func div32v(out, a []float32, aS bool, b []float32, bS bool) {
	for i := binBlocks(&divAsm, out, a, aS, b, bS); i < len(out); i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = x / y
	}
}

// max32v writes max(a, b) (8 lanes at a time; the layouts of binKernel32).
func max32v(out, a []float32, aS bool, b []float32, bS bool) {
	for i := binBlocks(&maxAsm, out, a, aS, b, bS); i < len(out); i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = max(x, y)
	}
}

// min32v writes min(a, b) (8 lanes at a time; the layouts of binKernel32).
func min32v(out, a []float32, aS bool, b []float32, bS bool) {
	for i := binBlocks(&minAsm, out, a, aS, b, bS); i < len(out); i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = min(x, y)
	}
}
