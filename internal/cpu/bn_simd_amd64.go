//go:build goexperiment.simd && amd64

package cpu

import "simd/archsimd"

// AVX2/FMA versions of the batch-norm row kernels (see bn_fast.go), 8 features at a time; features
// past the last multiple of 8, and CPUs without AVX2 and FMA, use the portable loops.

// bnMomentsBlock writes s1 = Σ(x−k) and s2 = Σ(x−k)² over the rows of x (a block of rows that stays
// in cache: it is read 8 features at a time, two rows per iteration).
func bnMomentsBlock(s1, s2, x, k []float32) {
	c := len(k)
	if !vec8() || c < 8 {
		bnMomentsBlockGo(s1, s2, x, k)
		return
	}
	size := len(x) / c * c
	j := 0
	for ; j+8 <= c; j += 8 {
		kv := archsimd.LoadFloat32x8Slice(k[j:])
		a1 := archsimd.BroadcastFloat32x8(0)
		a2, b1, b2 := a1, a1, a1
		off := j
		for ; off+c < size; off += 2 * c {
			d := archsimd.LoadFloat32x8Slice(x[off:]).Sub(kv)
			e := archsimd.LoadFloat32x8Slice(x[off+c:]).Sub(kv)
			a1 = a1.Add(d)
			a2 = d.MulAdd(d, a2)
			b1 = b1.Add(e)
			b2 = e.MulAdd(e, b2)
		}
		if off < size {
			d := archsimd.LoadFloat32x8Slice(x[off:]).Sub(kv)
			a1 = a1.Add(d)
			a2 = d.MulAdd(d, a2)
		}
		a1.Add(b1).StoreSlice(s1[j:])
		a2.Add(b2).StoreSlice(s2[j:])
	}
	for ; j < c; j++ {
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
	if !vec8() || c < 8 {
		bnNormalizeRowsGo(out, x, hi, lo, a, b)
		return
	}
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		o := out[off : off+c]
		j := 0
		for ; j+8 <= c; j += 8 {
			v := archsimd.LoadFloat32x8Slice(row[j:]).Sub(archsimd.LoadFloat32x8Slice(hi[j:])).
				Sub(archsimd.LoadFloat32x8Slice(lo[j:]))
			v.MulAdd(archsimd.LoadFloat32x8Slice(a[j:]), archsimd.LoadFloat32x8Slice(b[j:])).StoreSlice(o[j:])
		}
		for ; j < c; j++ {
			o[j] = ((row[j]-hi[j])-lo[j])*a[j] + b[j]
		}
	}
}

// bnGradSumsBlock writes s1 = Σg and s2 = Σg·(x−m) over the rows of g and x.
func bnGradSumsBlock(s1, s2, g, x, m []float32) {
	c := len(m)
	if !vec8() || c < 8 {
		bnGradSumsBlockGo(s1, s2, g, x, m)
		return
	}
	size := len(x) / c * c
	g = g[:size]
	j := 0
	for ; j+8 <= c; j += 8 {
		mv := archsimd.LoadFloat32x8Slice(m[j:])
		a1 := archsimd.BroadcastFloat32x8(0)
		a2, b1, b2 := a1, a1, a1
		off := j
		for ; off+c < size; off += 2 * c {
			gv := archsimd.LoadFloat32x8Slice(g[off:])
			hv := archsimd.LoadFloat32x8Slice(g[off+c:])
			a1 = a1.Add(gv)
			a2 = gv.MulAdd(archsimd.LoadFloat32x8Slice(x[off:]).Sub(mv), a2)
			b1 = b1.Add(hv)
			b2 = hv.MulAdd(archsimd.LoadFloat32x8Slice(x[off+c:]).Sub(mv), b2)
		}
		if off < size {
			gv := archsimd.LoadFloat32x8Slice(g[off:])
			a1 = a1.Add(gv)
			a2 = gv.MulAdd(archsimd.LoadFloat32x8Slice(x[off:]).Sub(mv), a2)
		}
		a1.Add(b1).StoreSlice(s1[j:])
		a2.Add(b2).StoreSlice(s2[j:])
	}
	for ; j < c; j++ {
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
	if !vec8() || c < 8 {
		bnGradRowsGo(dx, g, x, m, ka, kb, kd)
		return
	}
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		gr := g[off : off+c]
		o := dx[off : off+c]
		j := 0
		for ; j+8 <= c; j += 8 {
			t := archsimd.LoadFloat32x8Slice(row[j:]).Sub(archsimd.LoadFloat32x8Slice(m[j:]))
			u := archsimd.LoadFloat32x8Slice(kb[j:]).MulAdd(t, archsimd.LoadFloat32x8Slice(kd[j:]))
			archsimd.LoadFloat32x8Slice(ka[j:]).MulAdd(archsimd.LoadFloat32x8Slice(gr[j:]), u).StoreSlice(o[j:])
		}
		for ; j < c; j++ {
			o[j] = ka[j]*gr[j] + kb[j]*(row[j]-m[j]) + kd[j]
		}
	}
}
