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
	if hasAVX2FMA && c >= 8 {
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
	if hasAVX2FMA && c >= 8 {
		_ = src[15*ss+c-1]
		_ = dst[rs+cs+c-1]
		c8 = c / 8 * 8
		winoOutputAVX(&src[0], ss, &dst[0], rs, cs, c8/8)
	}
	if c8 < c {
		winoOutputGo(src, ss, dst, rs, cs, c8, c)
	}
}
