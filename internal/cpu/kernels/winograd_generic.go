//go:build !amd64 || purego

package kernels

// winoInput transforms channels [0, c) of the 4×4 tile d[i][j] = src[i·rs + j·cs + ch] into
// dst[(4i+j)·ds + ch] with portable Go.
func winoInput(src []float32, rs, cs int, dst []float32, ds, c int) {
	winoInputGo(src, rs, cs, dst, ds, 0, c)
}

// winoOutput transforms channels [0, c) of the 4×4 tile m[i][j] = src[(4i+j)·ss + ch] into the
// 2×2 block dst[a·rs + b·cs + ch] with portable Go.
func winoOutput(src []float32, ss int, dst []float32, rs, cs, c int) {
	winoOutputGo(src, ss, dst, rs, cs, 0, c)
}

// winoDy transforms channels [0, c) of the 2×2 gradient tile e[a][b] = src[a·rs + b·cs + ch] into
// dst[(4i+j)·ds + ch] = (A·e·Aᵀ)[i][j] with portable Go.
func winoDy(src []float32, rs, cs int, dst []float32, ds, c int) {
	winoDyGo(src, rs, cs, dst, ds, 0, c)
}

// winoDyPanels transforms channels [0, c) of the 2×2 gradient tile e[a][b] = src[a·rs + b·cs + ch]
// into panels of nr channels ps elements apart: dst[(ch/nr)·ps + (4i+j)·ds + ch%nr] = (A·e·Aᵀ)[i][j].
func winoDyPanels(src []float32, rs, cs int, dst []float32, ds, ps, nr, c int) {
	for q := 0; q < c; q += nr {
		winoDyGo(src[q:], rs, cs, dst[q/nr*ps:], ds, 0, min(nr, c-q))
	}
}

// wino4Input transforms channels [0, c) of the 6×6 tile d[i][j] = src[i·rs + j·cs + ch] into
// dst[(6i+j)·ds + ch] with portable Go.
func wino4Input(src []float32, rs, cs int, dst []float32, ds, c int) {
	wino4InputGo(src, rs, cs, dst, ds, 0, c)
}

// wino4Output transforms channels [0, c) of the 6×6 tile m[i][j] = src[(6i+j)·ss + ch] into the
// 4×4 block dst[r·rs + s·cs + ch] with portable Go.
func wino4Output(src []float32, ss int, dst []float32, rs, cs, c int) {
	wino4OutputGo(src, ss, dst, rs, cs, 0, c)
}

// wino4Filter is the F(4×4, 3×3) filter transform of a staged block (see winoForm.filter) in
// portable Go.
func wino4Filter(g *winoFilterIn, nc, nj int, u []float32, us, rs int) {
	winoFilterF4Go(g, nc, nj, u, us, rs)
}

// wino4DyPanels transforms channels [0, c) of the 4×4 gradient tile e[i][j] = src[i·rs + j·cs + ch]
// into panels of nr channels ps elements apart: dst[(ch/nr)·ps + (6i+j)·ds + ch%nr] = (A·e·Aᵀ)[i][j],
// with portable Go.
func wino4DyPanels(src []float32, rs, cs int, dst []float32, ds, ps, nr, c int) {
	wino4DyPanelsGo(src, rs, cs, dst, ds, ps, nr, 0, c)
}

// wino4InputEdge reports false: the portable path transforms border tiles from a zero-padded copy.
func wino4InputEdge(x []float32, off, rs, cs int, rows, cols uint8, dst []float32, ds, c int) bool {
	return false
}

// stageTransposed returns 0: the portable path stages transposed weights element by element.
func stageTransposed(g *[winoFilterBlock][winoFilterBlock]float32, w []float32, base, ls, cols, nc int) int {
	return 0
}
