//go:build !amd64 || purego

package cpu

// Without the assembly loops (other architectures, purego) the batch-norm row kernels are the
// portable ones.

func bnMomentsBlock(s1, s2, x, k []float32)          { bnMomentsBlockGo(s1, s2, x, k) }
func bnNormalizeRows(out, x, hi, lo, a, b []float32) { bnNormalizeRowsGo(out, x, hi, lo, a, b) }
func bnGradSumsBlock(s1, s2, g, x, m []float32)      { bnGradSumsBlockGo(s1, s2, g, x, m) }
func bnGradRows(dx, g, x, m, ka, kb, kd []float32)   { bnGradRowsGo(dx, g, x, m, ka, kb, kd) }

func bnNormalizeReLURows(out, relu, x, hi, lo, a, b []float32) {
	bnNormalizeRows(out, x, hi, lo, a, b)
	reluRows(relu, out, len(x)/max(len(a), 1)*len(a))
}

func bnNormalizeAddReLURows(out, relu, x, s, hi, lo, a, b []float32) {
	bnNormalizeRows(out, x, hi, lo, a, b)
	n := len(x) / max(len(a), 1) * len(a)
	addRowsTo(out, s, n)
	reluRows(relu, out, n)
}

func bnNormalizeReLUMaskRows(mask []uint32, relu, x, s, hi, lo, a, b []float32) {
	bnNormalizeReLUMaskRowsGo(mask, relu, x, s, hi, lo, a, b)
}

func bnNormalize2AddReLUMaskRows(mask []uint32, relu, x, xs, hi, lo, a, b, hs, ls, as, bs []float32) {
	bnNormalize2AddReLUMaskRowsGo(mask, relu, x, xs, hi, lo, a, b, hs, ls, as, bs)
}
