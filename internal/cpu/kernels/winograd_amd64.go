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

// winoInputAVX512, winoOutputAVX512, winoDyAVX512 and winoDyPanelsAVX512 are the forms of the
// functions above on groups of 16 channels (zmm registers; winograd_avx512_amd64.s).
//
//go:noescape
func winoInputAVX512(src *float32, rs, cs int, dst *float32, ds int, n16 int)

//go:noescape
func winoOutputAVX512(src *float32, ss int, dst *float32, rs, cs int, n16 int)

//go:noescape
func winoDyAVX512(src *float32, rs, cs int, dst *float32, ds int, n16 int)

//go:noescape
func winoDyPanelsAVX512(src *float32, rs, cs int, dst *float32, ds, ps int, n16 int)

// vecChannels splits c channels into the ones the 16-lane (n16 groups) and 8-lane (n8 groups)
// loops of the active path handle; channels from 16·n16 + 8·n8 on are left to the Go loops.
func vecChannels(c int) (n16, n8 int) {
	switch isa := cur().isa; {
	case isa >= ISAAVX512:
		n16 = c / 16
		return n16, (c - 16*n16) / 8
	case isa >= ISAAVX2:
		return 0, c / 8
	}
	return 0, 0
}

// winoInput transforms channels [0, c) of the 4×4 tile d[i][j] = src[i·rs + j·cs + ch] into
// dst[(4i+j)·ds + ch]; the slices must hold those elements.
func winoInput(src []float32, rs, cs int, dst []float32, ds, c int) {
	n16, n8 := vecChannels(c)
	c8 := 16*n16 + 8*n8
	if c8 > 0 {
		_ = src[3*rs+3*cs+c-1]
		_ = dst[15*ds+c-1]
	}
	if n16 > 0 {
		winoInputAVX512(&src[0], rs, cs, &dst[0], ds, n16)
	}
	if n8 > 0 {
		winoInputAVX(&src[16*n16], rs, cs, &dst[16*n16], ds, n8)
	}
	if c8 < c {
		winoInputGo(src, rs, cs, dst, ds, c8, c)
	}
}

// winoOutput transforms channels [0, c) of the 4×4 tile m[i][j] = src[(4i+j)·ss + ch] into the
// 2×2 block dst[a·rs + b·cs + ch]; the slices must hold those elements.
func winoOutput(src []float32, ss int, dst []float32, rs, cs, c int) {
	n16, n8 := vecChannels(c)
	c8 := 16*n16 + 8*n8
	if c8 > 0 {
		_ = src[15*ss+c-1]
		_ = dst[rs+cs+c-1]
	}
	if n16 > 0 {
		winoOutputAVX512(&src[0], ss, &dst[0], rs, cs, n16)
	}
	if n8 > 0 {
		winoOutputAVX(&src[16*n16], ss, &dst[16*n16], rs, cs, n8)
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
		if cur().isa >= ISAAVX512 {
			winoDyPanelsAVX512(&src[0], rs, cs, &dst[0], ds, ps, n16)
		} else {
			winoDyPanelsAVX(&src[0], rs, cs, &dst[0], ds, ps, n16)
		}
		q = n16 * 16
	}
	for ; q < c; q += nr {
		winoDy(src[q:], rs, cs, dst[q/nr*ps:], ds, min(nr, c-q))
	}
}

// winoDy transforms channels [0, c) of the 2×2 gradient tile e[a][b] = src[a·rs + b·cs + ch] into
// dst[(4i+j)·ds + ch] = (A·e·Aᵀ)[i][j]; the slices must hold those elements.
func winoDy(src []float32, rs, cs int, dst []float32, ds, c int) {
	n16, n8 := vecChannels(c)
	c8 := 16*n16 + 8*n8
	if c8 > 0 {
		_ = src[rs+cs+c-1]
		_ = dst[15*ds+c-1]
	}
	if n16 > 0 {
		winoDyAVX512(&src[0], rs, cs, &dst[0], ds, n16)
	}
	if n8 > 0 {
		winoDyAVX(&src[16*n16], rs, cs, &dst[16*n16], ds, n8)
	}
	if c8 < c {
		winoDyGo(src, rs, cs, dst, ds, c8, c)
	}
}

// wino4InputAVX512 computes the Winograd F(4×4, 3×3) input transform of n16 groups of 16
// channels: d[i][j] = src[i·rs + j·cs + c], dst[(6i+j)·ds + c] = (Bᵀ·d·B)[i][j] (strides in
// elements; winograd4_avx512_amd64.s), with the operations of wino4InputGo.
//
//go:noescape
func wino4InputAVX512(src *float32, rs, cs int, dst *float32, ds int, n16 int)

// wino4OutputAVX512 computes the Winograd F(4×4, 3×3) output transform of n16 groups of 16
// channels: m[i][j] = src[(6i+j)·ss + c], dst[r·rs + s·cs + c] = (Aᵀ·m·A)[r][s] for r, s < 4,
// with the operations of wino4OutputGo.
//
//go:noescape
func wino4OutputAVX512(src *float32, ss int, dst *float32, rs, cs int, n16 int)

// wino4InputAVX and wino4OutputAVX are the 8-lane forms of wino4InputAVX512 and
// wino4OutputAVX512 (winograd4_amd64.s); wino4OutputAVX keeps its intermediate 4×6 values in
// scratch (192 floats).
//
//go:noescape
func wino4InputAVX(src *float32, rs, cs int, dst *float32, ds int, n8 int)

//go:noescape
func wino4OutputAVX(src *float32, ss int, dst *float32, rs, cs int, n8 int, scratch *float32)

// wino4Input transforms channels [0, c) of the 6×6 tile d[i][j] = src[i·rs + j·cs + ch] into
// dst[(6i+j)·ds + ch]; the slices must hold those elements.
func wino4Input(src []float32, rs, cs int, dst []float32, ds, c int) {
	n16, n8 := vecChannels(c)
	c8 := 16*n16 + 8*n8
	if c8 > 0 {
		_ = src[5*rs+5*cs+c8-1]
		_ = dst[35*ds+c8-1]
	}
	if n16 > 0 {
		wino4InputAVX512(&src[0], rs, cs, &dst[0], ds, n16)
	}
	if n8 > 0 {
		wino4InputAVX(&src[16*n16], rs, cs, &dst[16*n16], ds, n8)
	}
	if c8 < c {
		wino4InputGo(src, rs, cs, dst, ds, c8, c)
	}
}

// wino4InputMaskedAVX512 is wino4InputAVX512 on the tile d[i][j] = x[off + i·rs + j·cs + c]
// with the positions whose mask masks[6i+j] is 0 read as zero (not read; off may be negative).
//
//go:noescape
func wino4InputMaskedAVX512(x *float32, off, rs, cs int, masks *[36]uint16, dst *float32, ds, n16 int)

// wino4EdgeMinChannels is the fewest channels for which wino4InputEdge transforms border tiles
// in place: with 64 channels the copy was the faster (BenchmarkWinograd4InputTiles, one core,
// 32×32×64 from memory: 2.2–2.4 CPU-ms against 2.2–3.0), from 128 on not (8×8×256: 0.29–0.32
// against 0.35–0.37).
const wino4EdgeMinChannels = 128

// wino4InputEdge transforms channels [0, c) of the border tile d[i][j] = x[off + i·rs + j·cs + ch]
// (0 where bit i of rows or bit j of cols is clear) into dst[(6i+j)·ds + ch] on the avx512 path
// and reports true; elsewhere, or with fewer than wino4EdgeMinChannels channels, it reports false.
func wino4InputEdge(x []float32, off, rs, cs int, rows, cols uint8, dst []float32, ds, c int) bool {
	// The masked loads compute the addresses of all 36 positions: where some lie outside x (the
	// first image's top tiles, the last one's bottom tiles), the tile is copied instead, since a
	// masked load whose address falls in a page not mapped yet takes a slow assist (measured 10
	// times the time of the tile's transform).
	n16 := c / 16
	if cur().isa < ISAAVX512 || c < wino4EdgeMinChannels || rows&0x3f == 0 || cols&0x3f == 0 || off < 0 || off+5*rs+5*cs+16*n16 > len(x) {
		return false
	}
	var masks [36]uint16
	lo, hi := len(x), -1 // the first and last element of the first channel read
	for i := 0; i < 6; i++ {
		for j := 0; j < 6; j++ {
			if rows>>i&1 != 0 && cols>>j&1 != 0 {
				masks[6*i+j] = 0xFFFF
				e := off + i*rs + j*cs
				lo, hi = min(lo, e), max(hi, e)
			}
		}
	}
	// Every element the masked loads read lies in x, and every one written in dst.
	_ = x[lo]
	_ = x[hi+16*n16-1]
	_ = dst[35*ds+16*n16-1]
	wino4InputMaskedAVX512(&x[0], off, rs, cs, &masks, &dst[0], ds, n16)
	if 16*n16 < c {
		wino4InputEdgeGo(x, off, rs, cs, rows, cols, dst, ds, 16*n16, c)
	}
	return true
}

// wino4Output transforms channels [0, c) of the 6×6 tile m[i][j] = src[(6i+j)·ss + ch] into the
// 4×4 block dst[r·rs + s·cs + ch]; the slices must hold those elements.
func wino4Output(src []float32, ss int, dst []float32, rs, cs, c int) {
	n16, n8 := vecChannels(c)
	c8 := 16*n16 + 8*n8
	if c8 > 0 {
		_ = src[35*ss+c8-1]
		_ = dst[3*rs+3*cs+c8-1]
	}
	if n16 > 0 {
		wino4OutputAVX512(&src[0], ss, &dst[0], rs, cs, n16)
	}
	if n8 > 0 {
		var scratch [24 * 8]float32
		wino4OutputAVX(&src[16*n16], ss, &dst[16*n16], rs, cs, n8, &scratch[0])
	}
	if c8 < c {
		wino4OutputGo(src, ss, dst, rs, cs, c8, c)
	}
}

// wino4FilterAVX512 computes the F(4×4, 3×3) filter transform of nc rows of 16 channel pairs:
// filter k of pair (row r, lane l) at gf[k·256 + 16r + l] (the layout of winoFilterIn), ξ at
// u[ξ·us + rs·r + l], with the operations of winoFilterF4Go; scale is wino4Scale.
//
//go:noescape
func wino4FilterAVX512(gf, u, scale *float32, us, nc, rs int)

// wino4FilterAVX is wino4FilterAVX512 on 8-lane halves of the rows, through scratch (144 floats).
//
//go:noescape
func wino4FilterAVX(gf, u, scale *float32, us, nc int, scratch *float32)

// wino4Filter is the F(4×4, 3×3) filter transform of a staged block (see winoForm.filter).
func wino4Filter(g *winoFilterIn, nc, nj int, u []float32, us, rs int) {
	isa := cur().isa
	if isa < ISAAVX2 || nj != winoFilterBlock || nc == 0 || (isa < ISAAVX512 && rs != winoFilterBlock) {
		winoFilterF4Go(g, nc, nj, u, us, rs)
		return
	}
	_ = u[35*us+(nc-1)*rs+nj-1]
	if isa >= ISAAVX512 {
		wino4FilterAVX512(&g[0][0][0], &u[0], &wino4Scale[0], us, nc, rs)
		return
	}
	var scratch [18 * 8]float32
	wino4FilterAVX(&g[0][0][0], &u[0], &wino4Scale[0], us, nc, &scratch[0])
}

// wino4DyPanelsAVX512 computes the F(3×3, 4×4) gradient-tile transform of n16 groups of 16
// channels whose outputs lie ps elements apart: e[i][j] = src[i·rs + j·cs + c],
// dst[(c/16)·ps + (6i+j)·ds + c%16] = (A·e·Aᵀ)[i][j] (winograd4_avx512_amd64.s), with the
// operations of wino4DyGo.
//
//go:noescape
func wino4DyPanelsAVX512(src *float32, rs, cs int, dst *float32, ds, ps int, n16 int)

// wino4DyPanels transforms channels [0, c) of the 4×4 gradient tile e[i][j] = src[i·rs + j·cs + ch]
// into panels of nr channels ps elements apart: dst[(ch/nr)·ps + (6i+j)·ds + ch%nr] = (A·e·Aᵀ)[i][j].
func wino4DyPanels(src []float32, rs, cs int, dst []float32, ds, ps, nr, c int) {
	q := 0
	if cur().isa >= ISAAVX512 && nr%16 == 0 && c >= 16 {
		n16 := c / 16
		last := 16 * (n16 - 1) // the first channel of the last 16-channel group
		_ = src[3*rs+3*cs+last+15]
		_ = dst[last/nr*ps+35*ds+last%nr+15]
		if nr == 16 {
			wino4DyPanelsAVX512(&src[0], rs, cs, &dst[0], ds, ps, n16)
		} else {
			// Panels wider than 16 channels (the wide micro-kernel's): one group at a time, at
			// its offset inside its panel.
			for ch := 0; ch <= last; ch += 16 {
				wino4DyPanelsAVX512(&src[ch], rs, cs, &dst[ch/nr*ps+ch%nr], ds, ps, 1)
			}
		}
		q = n16 * 16
	}
	wino4DyPanelsGo(src, rs, cs, dst, ds, ps, nr, q, c)
}

// stageTransposed writes g[ci][j] = w[base + j·ls + ci] for j < cols and ci below the largest
// multiple of 16 not above nc with the AVX-512 transposes, and returns that multiple; it returns
// 0, writing nothing, without AVX-512.
func stageTransposed(g *[winoFilterBlock][winoFilterBlock]float32, w []float32, base, ls, cols, nc int) int {
	blocks := nc / 16
	if blocks == 0 || cols <= 0 || cur().isa < ISAAVX512 {
		return 0
	}
	_ = w[base+(cols-1)*ls+16*blocks-1]
	transpose16AVX512(&g[0][0], winoFilterBlock, &w[base], ls, cols, blocks, uint16(1<<cols-1))
	return 16 * blocks
}
