package data

import "math"

// axisTaps holds, for each output position along one axis, the first source index and the
// normalised weights of the source pixels that make it.
type axisTaps struct {
	first   []int
	weights [][]float32
	buf     []float32
}

// set computes the taps that resample the source window [start, start+length) (within
// [lo, hi), source pixel i covering [i, i+1)) to out positions. It is bilinear interpolation with
// half-pixel centres when upsampling and a triangle filter widened by the scale factor when
// downsampling (antialiased, so that shrinking a large image does not alias); weights are normalised
// so that they sum to 1 at the edges.
func (t *axisTaps) set(lo, hi int, start, length float64, out int) {
	scale := length / float64(out)
	support := math.Max(1, scale)
	maxTaps := int(math.Ceil(2*support)) + 2
	if cap(t.first) < out {
		t.first = make([]int, out)
		t.weights = make([][]float32, out)
	}
	t.first, t.weights = t.first[:out], t.weights[:out]
	if cap(t.buf) < out*maxTaps {
		t.buf = make([]float32, out*maxTaps)
	}
	t.buf = t.buf[:out*maxTaps]
	for o := range out {
		center := start + (float64(o)+0.5)*scale
		a := max(lo, int(math.Floor(center-support)))
		b := min(hi, int(math.Ceil(center+support))+1)
		w := t.buf[o*maxTaps : o*maxTaps : (o+1)*maxTaps]
		first := -1
		var sum float64
		for i := a; i < b; i++ {
			x := 1 - math.Abs(float64(i)+0.5-center)/support
			if x <= 0 {
				if first < 0 {
					continue
				}
				break
			}
			if first < 0 {
				first = i
			}
			w = append(w, float32(x))
			sum += x
		}
		if first < 0 { // window smaller than one pixel: nearest
			first = min(max(int(center), lo), hi-1)
			w = append(w, 1)
			sum = 1
		}
		for k := range w {
			w[k] = float32(float64(w[k]) / sum)
		}
		t.first[o], t.weights[o] = first, w
	}
}

// resizer resamples a rectangle of an HWC float32 image; it keeps its buffers between calls.
type resizer struct {
	rows, cols axisTaps
	tmp        []float32
}

// resize writes into dst ([outH, outW, c]) the window (top, left, height, width) of src ([h, w, c]),
// resampled with axisTaps' filter, separably (columns first, then rows). Only source pixels that
// overlap the window are read.
func (r *resizer) resize(dst, src []float32, h, w, c int, top, left, height, width float64, outH, outW int) {
	// Only pixels inside the window contribute, as if it were cropped first.
	r.cols.set(max(0, int(math.Floor(left))), min(w, int(math.Ceil(left+width))), left, width, outW)
	r.rows.set(max(0, int(math.Floor(top))), min(h, int(math.Ceil(top+height))), top, height, outH)
	// Source rows that any output row reads.
	r0, r1 := h, 0
	for o := range outH {
		r0 = min(r0, r.rows.first[o])
		r1 = max(r1, r.rows.first[o]+len(r.rows.weights[o]))
	}
	n := (r1 - r0) * outW * c
	if cap(r.tmp) < n {
		r.tmp = make([]float32, n)
	}
	tmp := r.tmp[:n]
	for y := r0; y < r1; y++ {
		srow := src[y*w*c : (y+1)*w*c]
		trow := tmp[(y-r0)*outW*c : (y-r0+1)*outW*c]
		switch c {
		case 1:
			for ox := range outW {
				f, ws := r.cols.first[ox], r.cols.weights[ox]
				var s float32
				for k, v := range srow[f : f+len(ws)] {
					s += ws[k] * v
				}
				trow[ox] = s
			}
		case 3:
			for ox := range outW {
				f, ws := r.cols.first[ox], r.cols.weights[ox]
				var s0, s1, s2 float32
				p := srow[3*f : 3*(f+len(ws))]
				for k, wk := range ws {
					s0 += wk * p[3*k]
					s1 += wk * p[3*k+1]
					s2 += wk * p[3*k+2]
				}
				trow[3*ox], trow[3*ox+1], trow[3*ox+2] = s0, s1, s2
			}
		default:
			for ox := range outW {
				f, ws := r.cols.first[ox], r.cols.weights[ox]
				for ch := range c {
					var s float32
					for k, wk := range ws {
						s += wk * srow[(f+k)*c+ch]
					}
					trow[ox*c+ch] = s
				}
			}
		}
	}
	rowLen := outW * c
	for oy := range outH {
		f, ws := r.rows.first[oy], r.rows.weights[oy]
		drow := dst[oy*rowLen : (oy+1)*rowLen]
		clear(drow)
		for k, wk := range ws {
			trow := tmp[(f+k-r0)*rowLen : (f+k-r0+1)*rowLen]
			for i, v := range trow {
				drow[i] += wk * v
			}
		}
	}
}
