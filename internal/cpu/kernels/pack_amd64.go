//go:build amd64 && !purego

package kernels

// packCopy32AVX512 copies rows rows of 32 floats from src (row stride lds elements) to dst (row
// stride 32).
//
//go:noescape
func packCopy32AVX512(dst, src *float32, lds, rows int)

// packCopy16AVX512 copies the lanes in mask of rows rows of 16 floats from src (row stride lds
// elements) to dst (row stride ldd), reading and writing no other lane.
//
//go:noescape
func packCopy16AVX512(dst *float32, ldd int, src *float32, lds, rows int, mask uint16)

// transpose16AVX512 transposes blocks consecutive 16×16 blocks: for block b it reads rows
// 0…rows-1 (rows ≤ 16) of 16 floats at src + r·lss + 16·b and writes their column p to
// dst + (16·b + p)·lds, lanes ≥ rows left untouched (strides in elements).
//
//go:noescape
func transpose16AVX512(dst *float32, lds int, src *float32, lss int, rows, blocks int, mask uint16)

// copyRows32 copies rows rows of 32 elements from src[base + r·lds] to dst[32·r] with the AVX-512
// loop and reports true, or reports false, copying nothing, when the active path has no AVX-512
// or T is not float32.
func copyRows32[T float](dst, src []T, base, lds, rows int) bool {
	if rows <= 0 || ActiveISA() < ISAAVX512 {
		return false
	}
	d, ok := any(dst).([]float32)
	if !ok {
		return false
	}
	s := any(src).([]float32)
	_ = s[base+(rows-1)*lds+31]
	_ = d[rows*32-1]
	packCopy32AVX512(&d[0], &s[base], lds, rows)
	return true
}

// copyRows copies the first width (≤ 16) elements of rows rows from src[base + r·lds] to
// dst[r·ldd] with the AVX-512 loop and reports true, or reports false, copying nothing, when the
// active path has no AVX-512 or T is not float32.
func copyRows[T float](dst []T, ldd int, src []T, base, lds, width, rows int) bool {
	if rows <= 0 || width <= 0 || width > 16 || ActiveISA() < ISAAVX512 {
		return false
	}
	d, ok := any(dst).([]float32)
	if !ok {
		return false
	}
	s := any(src).([]float32)
	_ = s[base+(rows-1)*lds+width-1]
	_ = d[(rows-1)*ldd+width-1]
	packCopy16AVX512(&d[0], ldd, &s[base], lds, rows, uint16(1<<width-1))
	return true
}

// transposeRows writes dst[p·ld + r] = src[base + r·lss + p] for r < rows (≤ 16) and p below the
// largest multiple of 16 not above steps, with the AVX-512 loop, and returns that multiple; it
// returns 0, writing nothing, when the active path has no AVX-512 or T is not float32.
func transposeRows[T float](dst []T, ld int, src []T, base, lss, rows, steps int) int {
	blocks := steps / 16
	if blocks == 0 || rows <= 0 || rows > 16 || ActiveISA() < ISAAVX512 {
		return 0
	}
	d, ok := any(dst).([]float32)
	if !ok {
		return 0
	}
	s := any(src).([]float32)
	_ = s[base+(rows-1)*lss+blocks*16-1]
	_ = d[(blocks*16-1)*ld+rows-1]
	transpose16AVX512(&d[0], ld, &s[base], lss, rows, blocks, uint16(1<<rows-1))
	return blocks * 16
}

// transposePtrs16AVX512 transposes blocks consecutive 16×16 blocks whose rows start anywhere: for
// block b it reads the 16 floats at rows[r] + 16·b for each r < 16 and writes column p of the
// block to dst + (16·b + p)·lds, lanes not in mask left untouched (strides in elements).
//
//go:noescape
func transposePtrs16AVX512(dst *float32, lds int, rows *[16]*float32, blocks int, mask uint16)

// gatherSteps writes dst[p·ld + r] = rows[r][p] for r < lanes (≤ 16) and p below the largest
// multiple of 16 not above steps, with the AVX-512 loop, and returns that multiple; it returns 0,
// writing nothing, when the active path has no AVX-512. Every rows[r], r < 16, must hold that
// many elements (rows past lanes are read and not written).
func gatherSteps(dst []float32, ld int, rows *[16][]float32, lanes, steps int) int {
	blocks := steps / 16
	if blocks == 0 || lanes <= 0 || lanes > 16 || ActiveISA() < ISAAVX512 {
		return 0
	}
	var ptrs [16]*float32
	for r := range ptrs {
		_ = rows[r][blocks*16-1]
		ptrs[r] = &rows[r][0]
	}
	_ = dst[(blocks*16-1)*ld+lanes-1]
	transposePtrs16AVX512(&dst[0], ld, &ptrs, blocks, uint16(1<<lanes-1))
	return blocks * 16
}

// packRuns14AVX512 writes rows rows of 14 floats to dst (row stride 14): row r is the n1 floats at
// src1 + r·lds followed by the 14 − n1 floats at src2 + r·lds (1 ≤ n1 ≤ 14; src2 unread when
// n1 = 14); mask1 = 2^n1 − 1, mask2 = 2^(14−n1) − 1. Unmasked stores whose surplus lanes are overwritten by the next run or row, the last
// row masked: it writes nothing past dst + 14·rows.
//
//go:noescape
func packRuns14AVX512(dst, src1, src2 *float32, lds, rows, n1 int, mask1, mask2 uint16)

// copyRuns14 writes dst[14·r + i] = src[base1 + r·lds + i] for i < n1 and
// src[base2 + r·lds + i − n1] for n1 ≤ i < 14, r < rows, with the AVX-512 loop, and reports true;
// it reports false, writing nothing, when the active path has no AVX-512.
func copyRuns14(dst, src []float32, base1, base2, lds, n1, rows int) bool {
	if rows <= 0 || n1 < 1 || n1 > 14 || ActiveISA() < ISAAVX512 {
		return false
	}
	_ = dst[14*rows-1]
	_ = src[base1+(rows-1)*lds+n1-1]
	p2 := &src[base1]
	if n1 < 14 {
		_ = src[base2+(rows-1)*lds+13-n1]
		p2 = &src[base2]
	}
	packRuns14AVX512(&dst[0], &src[base1], p2, lds, rows, n1, uint16(1<<n1-1), uint16(1<<(14-n1)-1))
	return true
}

// pixelRun is one run of packPixelsAVX512: the lanes in mask of the vector at src, src + lds,
// src + 2·lds … (or at src for every pixel when stepMask is 0: a run of zeros read from
// zeroSteps), stored at byte dstOff of the pixel's 14-float step.
type pixelRun struct {
	src      *float32
	stepMask int // −1, or 0 for a run that reads the same floats for every pixel
	dstOff   int // bytes, from dst
	mask     uint64
}

// packPixelsAVX512 stores, for each pixel j < pixels, the runs in order (see pixelRun), the step
// of pixel j at dst + 56·j bytes; whole vectors except for the last two pixels (masked).
//
//go:noescape
func packPixelsAVX512(dst *float32, runs *pixelRun, nRuns, pixels, lds int)

// packPixels runs packPixelsAVX512 and reports true, or reports false, writing nothing, when the
// active path has no AVX-512. The caller checks that the runs lie inside their slices.
func packPixels(dst []float32, runs []pixelRun, pixels, lds int) bool {
	if ActiveISA() < ISAAVX512 {
		return false
	}
	if pixels <= 0 || len(runs) == 0 {
		return true
	}
	packPixelsAVX512(&dst[0], &runs[0], len(runs), pixels, lds)
	return true
}
