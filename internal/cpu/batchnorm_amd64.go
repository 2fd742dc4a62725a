//go:build amd64 && !purego

package cpu

// AVX-512 and AVX2/FMA versions of the batch-norm row kernels (see batchnorm.go; vec_amd64.s). The
// avx512 path takes 16 features at a time and the last partial block through an opmask; the avx2
// path 8 at a time, features past the last multiple of 8 in the portable loops, as are all
// features on the generic path.

// bnMomentsBlock writes s1 = Σ(x−k) and s2 = Σ(x−k)² over the rows of x (a block of rows that stays
// in cache: it is read 8 features at a time, two rows per iteration).
func bnMomentsBlock(s1, s2, x, k []float32) {
	c := len(k)
	if vec16() && c > 0 {
		size := len(x) / c * c
		if size == 0 {
			clear(s1[:c])
			clear(s2[:c])
			return
		}
		_, _ = s1[c-1], s2[c-1]
		bnMomentsAVX512(&s1[0], &s2[0], &x[0], &k[0], c, size, c&^15, tailMask16(c, 16))
		return
	}
	if !vec8() || c < 8 {
		bnMomentsBlockGo(s1, s2, x, k)
		return
	}
	size := len(x) / c * c
	c8 := c &^ 7
	if size > 0 {
		_, _ = s1[c-1], s2[c-1]
		bnMomentsAVX2(&s1[0], &s2[0], &x[0], &k[0], c, size, c8)
	} else {
		clear(s1[:c8])
		clear(s2[:c8])
	}
	for j := c8; j < c; j++ {
		var t1, t2 float32
		for off := j; off < size; off += c {
			d := x[off] - k[j]
			t1 += d
			t2 += d * d
		}
		s1[j], s2[j] = t1, t2
	}
}

// bnNormalizeRows writes out = ((x − hi) − lo)·a + b.
func bnNormalizeRows(out, x, hi, lo, a, b []float32) {
	c := len(a)
	if vec16() && c > 0 {
		rows := len(x) / c
		if rows == 0 {
			return
		}
		_, _, _, _ = out[rows*c-1], hi[c-1], lo[c-1], b[c-1]
		bnNormalizeAVX512(&out[0], &x[0], &hi[0], &lo[0], &a[0], &b[0], c, rows, c&^15, tailMask16(c, 16))
		return
	}
	if !vec8() || c < 8 {
		bnNormalizeRowsGo(out, x, hi, lo, a, b)
		return
	}
	rows := len(x) / c
	if rows == 0 {
		return
	}
	c8 := c &^ 7
	_, _, _, _ = out[rows*c-1], hi[c-1], lo[c-1], b[c-1]
	bnNormalizeAVX2(&out[0], &x[0], &hi[0], &lo[0], &a[0], &b[0], c, rows, c8)
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		o := out[off : off+c]
		for j := c8; j < c; j++ {
			o[j] = ((row[j]-hi[j])-lo[j])*a[j] + b[j]
		}
	}
}

// bnGradSumsBlock writes s1 = Σg and s2 = Σg·(x−m) over the rows of g and x.
func bnGradSumsBlock(s1, s2, g, x, m []float32) {
	c := len(m)
	if vec16() && c > 0 {
		size := len(x) / c * c
		if size == 0 {
			clear(s1[:c])
			clear(s2[:c])
			return
		}
		_, _, _ = s1[c-1], s2[c-1], g[size-1]
		bnGradSumsAVX512(&s1[0], &s2[0], &g[0], &x[0], &m[0], c, size, c&^15, tailMask16(c, 16))
		return
	}
	if !vec8() || c < 8 {
		bnGradSumsBlockGo(s1, s2, g, x, m)
		return
	}
	size := len(x) / c * c
	g = g[:size]
	c8 := c &^ 7
	if size > 0 {
		_, _ = s1[c-1], s2[c-1]
		bnGradSumsAVX2(&s1[0], &s2[0], &g[0], &x[0], &m[0], c, size, c8)
	} else {
		clear(s1[:c8])
		clear(s2[:c8])
	}
	for j := c8; j < c; j++ {
		var t1, t2 float32
		for off := j; off < size; off += c {
			t1 += g[off]
			t2 += g[off] * (x[off] - m[j])
		}
		s1[j], s2[j] = t1, t2
	}
}

// bnGradRows writes dx = ka·g + kb·(x−m) + kd.
func bnGradRows(dx, g, x, m, ka, kb, kd []float32) {
	c := len(m)
	if vec16() && c > 0 {
		rows := len(x) / c
		if rows == 0 {
			return
		}
		_, _, _, _, _ = dx[rows*c-1], g[rows*c-1], ka[c-1], kb[c-1], kd[c-1]
		bnGradRowsAVX512(&dx[0], &g[0], &x[0], &m[0], &ka[0], &kb[0], &kd[0], c, rows, c&^15, tailMask16(c, 16))
		return
	}
	if !vec8() || c < 8 {
		bnGradRowsGo(dx, g, x, m, ka, kb, kd)
		return
	}
	rows := len(x) / c
	if rows == 0 {
		return
	}
	c8 := c &^ 7
	_, _, _, _, _ = dx[rows*c-1], g[rows*c-1], ka[c-1], kb[c-1], kd[c-1]
	bnGradRowsAVX2(&dx[0], &g[0], &x[0], &m[0], &ka[0], &kb[0], &kd[0], c, rows, c8)
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		gr := g[off : off+c]
		o := dx[off : off+c]
		for j := c8; j < c; j++ {
			o[j] = ka[j]*gr[j] + kb[j]*(row[j]-m[j]) + kd[j]
		}
	}
}

// bnNormalizeReLURows writes out = ((x − hi) − lo)·a + b (as bnNormalizeRows) and relu =
// max(out, 0).
func bnNormalizeReLURows(out, relu, x, hi, lo, a, b []float32) {
	c := len(a)
	if vec16() && c > 0 {
		rows := len(x) / c
		if rows == 0 {
			return
		}
		_, _, _, _, _ = out[rows*c-1], relu[rows*c-1], hi[c-1], lo[c-1], b[c-1]
		bnNormalizeReLUAVX512(&out[0], &relu[0], &x[0], &hi[0], &lo[0], &a[0], &b[0], c, rows, c&^15, tailMask16(c, 16))
		return
	}
	bnNormalizeRows(out, x, hi, lo, a, b)
	reluRows(relu, out, len(x)/max(c, 1)*c)
}

// bnNormalizeAddReLURows writes out = (((x − hi) − lo)·a + b) + s (bnNormalizeRows's value plus
// the residual s) and relu = max(out, 0).
func bnNormalizeAddReLURows(out, relu, x, s, hi, lo, a, b []float32) {
	c := len(a)
	if vec16() && c > 0 {
		rows := len(x) / c
		if rows == 0 {
			return
		}
		_, _, _, _, _, _ = out[rows*c-1], relu[rows*c-1], s[rows*c-1], hi[c-1], lo[c-1], b[c-1]
		bnNormalizeAddReLUAVX512(&out[0], &relu[0], &x[0], &s[0], &hi[0], &lo[0], &a[0], &b[0], c, rows, c&^15,
			tailMask16(c, 16))
		return
	}
	bnNormalizeRows(out, x, hi, lo, a, b)
	n := len(x) / max(c, 1) * c
	addRowsTo(out, s, n)
	reluRows(relu, out, n)
}

// bnNormalizeReLUMaskRows writes relu = max(v, 0) and the bits of v ≥ 0 to mask (element i of
// the rows at bit i mod 32 of mask[i/32]), v = bnNormalizeRows's value, plus s when s is set.
func bnNormalizeReLUMaskRows(mask []uint32, relu, x, s, hi, lo, a, b []float32) {
	c := len(a)
	if !vec16() || c == 0 || c%16 != 0 {
		bnNormalizeReLUMaskRowsGo(mask, relu, x, s, hi, lo, a, b)
		return
	}
	rows := len(x) / c
	if rows == 0 {
		return
	}
	n := rows * c
	_, _, _, _, _ = relu[n-1], mask[(n-1)/32], hi[c-1], lo[c-1], b[c-1]
	if s != nil {
		_ = s[n-1]
		bnNormalizeAddReLUMaskAVX512(&relu[0], &mask[0], &x[0], &s[0], &hi[0], &lo[0], &a[0], &b[0], c, rows)
		return
	}
	bnNormalizeReLUMaskAVX512(&relu[0], &mask[0], &x[0], &hi[0], &lo[0], &a[0], &b[0], c, rows)
}

// bnNormalize2AddReLUMaskRows is bnNormalizeReLUMaskRows with s = ((xs − hs) − ls)·as + bs (as
// bnNormalizeRows).
func bnNormalize2AddReLUMaskRows(mask []uint32, relu, x, xs, hi, lo, a, b, hs, ls, as, bs []float32) {
	c := len(a)
	if !vec16() || c == 0 || c%16 != 0 {
		bnNormalize2AddReLUMaskRowsGo(mask, relu, x, xs, hi, lo, a, b, hs, ls, as, bs)
		return
	}
	rows := len(x) / c
	if rows == 0 {
		return
	}
	n := rows * c
	_, _, _ = relu[n-1], mask[(n-1)/32], xs[n-1]
	// The coefficients, 16 of each per block of 16 features.
	kp := getScratch[float32](8 * c)
	defer putScratch(kp)
	k := *kp
	for j := 0; j < c; j += 16 {
		for i, v := range [][]float32{hi, lo, a, b, hs, ls, as, bs} {
			copy(k[8*j+16*i:8*j+16*(i+1)], v[j:j+16])
		}
	}
	bnNormalize2AddReLUMaskAVX512(&relu[0], &mask[0], &x[0], &xs[0], &k[0], c, rows)
}
