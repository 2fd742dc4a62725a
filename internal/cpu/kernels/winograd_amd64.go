//go:build amd64 && !purego

package kernels

// winoInputAVX computes the Winograd F(2×2, 3×3) input transform of n8 groups of 8 channels:
// d[i][j] = src[i·rs + j·cs + c], dst[(4i+j)·ds + c] = (Bᵀ·d·B)[i][j] (strides in elements).
//
//go:noescape
func winoInputAVX(src *float32, rs, cs int, dst *float32, ds int, n8 int)

// winoOutputAVX computes the Winograd F(2×2, 3×3) output transform of n8 groups of 8 channels:
// m[i][j] = src[(4i+j)·ss + c], dst[a·rs + b·cs + c] = (Aᵀ·m·A)[a][b] for a, b in {0, 1}.
//
//go:noescape
func winoOutputAVX(src *float32, ss int, dst *float32, rs, cs int, n8 int)

// winoInput transforms channels [0, c) of the 4×4 tile d[i][j] = src[i·rs + j·cs + ch] into
// dst[(4i+j)·ds + ch]; the slices must hold those elements.
func winoInput(src []float32, rs, cs int, dst []float32, ds, c int) {
	c8 := 0
	if cur().isa >= ISAAVX2 && c >= 8 {
		_ = src[3*rs+3*cs+c-1]
		_ = dst[15*ds+c-1]
		c8 = c / 8 * 8
		winoInputAVX(&src[0], rs, cs, &dst[0], ds, c8/8)
	}
	if c8 < c {
		winoInputGo(src, rs, cs, dst, ds, c8, c)
	}
}

// winoOutput transforms channels [0, c) of the 4×4 tile m[i][j] = src[(4i+j)·ss + ch] into the
// 2×2 block dst[a·rs + b·cs + ch]; the slices must hold those elements.
func winoOutput(src []float32, ss int, dst []float32, rs, cs, c int) {
	c8 := 0
	if cur().isa >= ISAAVX2 && c >= 8 {
		_ = src[15*ss+c-1]
		_ = dst[rs+cs+c-1]
		c8 = c / 8 * 8
		winoOutputAVX(&src[0], ss, &dst[0], rs, cs, c8/8)
	}
	if c8 < c {
		winoOutputGo(src, ss, dst, rs, cs, c8, c)
	}
}

// winoDyAVX computes the Winograd F(3×3, 2×2) gradient-tile transform of n8 groups of 8 channels:
// e[a][b] = src[a·rs + b·cs + c], dst[(4i+j)·ds + c] = (A·e·Aᵀ)[i][j], A = [1 0; 1 1; 1 −1; 0 −1]
// (strides in elements).
//
//go:noescape
func winoDyAVX(src *float32, rs, cs int, dst *float32, ds int, n8 int)

// winoDyPanelsAVX computes winoDyAVX on n16 groups of 16 channels whose outputs lie ps elements
// apart: channel c goes to dst[(c/16)·ps + (4i+j)·ds + c%16].
//
//go:noescape
func winoDyPanelsAVX(src *float32, rs, cs int, dst *float32, ds, ps int, n16 int)

// winoDyPanels transforms channels [0, c) of the 2×2 gradient tile e[a][b] = src[a·rs + b·cs + ch]
// into panels of nr channels ps elements apart: dst[(ch/nr)·ps + (4i+j)·ds + ch%nr] = (A·e·Aᵀ)[i][j].
func winoDyPanels(src []float32, rs, cs int, dst []float32, ds, ps, nr, c int) {
	q := 0
	if cur().isa >= ISAAVX2 && nr == 16 && c >= 16 {
		n16 := c / 16
		_ = src[rs+cs+c-1]
		_ = dst[(n16-1)*ps+15*ds+15]
		winoDyPanelsAVX(&src[0], rs, cs, &dst[0], ds, ps, n16)
		q = n16 * 16
	}
	for ; q < c; q += nr {
		winoDy(src[q:], rs, cs, dst[q/nr*ps:], ds, min(nr, c-q))
	}
}

// winoDy transforms channels [0, c) of the 2×2 gradient tile e[a][b] = src[a·rs + b·cs + ch] into
// dst[(4i+j)·ds + ch] = (A·e·Aᵀ)[i][j]; the slices must hold those elements.
func winoDy(src []float32, rs, cs int, dst []float32, ds, c int) {
	c8 := 0
	if cur().isa >= ISAAVX2 && c >= 8 {
		_ = src[rs+cs+c-1]
		_ = dst[15*ds+c-1]
		c8 = c / 8 * 8
		winoDyAVX(&src[0], rs, cs, &dst[0], ds, c8/8)
	}
	if c8 < c {
		winoDyGo(src, rs, cs, dst, ds, c8, c)
	}
}
