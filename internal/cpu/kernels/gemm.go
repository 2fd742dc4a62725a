package kernels

import (
	"fmt"
	"sync"
)

// Micro-kernels chosen once for this CPU.

// minFlopsPerThread is the least work (2·m·n·k) the drivers (gemmSrc) hand to one more goroutine.
const minFlopsPerThread = 1 << 19

// minFlopsPerGemmThread is the least work (2·m·n·k) per goroutine for which the entry points
// (Sgemm, Dgemm, the batched products, the convolutions) split one product: waking a parked
// goroutine on the other core costs more than it saves on a product of a few tens of µs (on 2 Zen
// 5 cores under load, 128×64×64 and 128×128×64 took 1.3–2× longer on 2 goroutines than on 1).
// The drivers take any number of goroutines and give the same bits for all.
const minFlopsPerGemmThread = 1 << 22

// gemmThreads is the number of goroutines an entry point gives an m×n×k product: Threads(),
// fewer for small products (minFlopsPerGemmThread).
func gemmThreads(m, n, k int) int {
	return min(Threads(), max(1, 2*m*n*k/minFlopsPerGemmThread))
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major float32 matrices, op(X) = X or Xᵀ.
// op(A) is m×k, op(B) is k×n, C is m×n; lda/ldb/ldc are row strides. Uses up to Threads()
// goroutines (one for products under about 8 MFLOP: see minFlopsPerGemmThread).
//
// A is read as a[i·lda+p] (m rows of k) or, when transA, as a[p·lda+i] (k rows of m); B likewise
// as b[p·ldb+j] (k rows of n) or, when transB, b[j·ldb+p] (n rows of k). When beta == 0, C is
// written without being read (NaNs in C are ignored); when k == 0 or alpha == 0, C = beta·C and
// A and B are not read. C must not overlap A or B. Invalid sizes or strides, or slices too short
// for them, panic with a message naming the argument, as for an out-of-range index.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs("Sgemm", transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	gemm(cur().sgemm(n), aSource[float32]{trans: transA, a: a, lda: lda}, transB, m, n, k, alpha, b, ldb, beta, c, ldc, gemmThreads(m, n, k))
}

// Dgemm computes C = alpha·op(A)·op(B) + beta·C for row-major float64 matrices; the contract is
// that of Sgemm.
func Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	checkArgs("Dgemm", transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	gemm(cur().d, aSource[float64]{trans: transA, a: a, lda: lda}, transB, m, n, k, alpha, b, ldb, beta, c, ldc, gemmThreads(m, n, k))
}

// checkArgs panics with a descriptive message if the GEMM arguments are inconsistent.
func checkArgs[T float](name string, transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Errorf("kernels: %s: negative size m=%d n=%d k=%d", name, m, n, k))
	}
	// Rows and columns of A, B, C as stored.
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	check := func(what string, rows, cols, ld, length int) {
		if ld < max(cols, 1) {
			panic(fmt.Errorf("kernels: %s: %s stride %d < row length %d", name, what, ld, cols))
		}
		if rows > 0 && cols > 0 && length < (rows-1)*ld+cols {
			panic(fmt.Errorf("kernels: %s: %s has %d elements, needs %d for %d×%d with stride %d",
				name, what, length, (rows-1)*ld+cols, rows, cols, ld))
		}
	}
	check("C", m, n, ldc, len(c))
	if m == 0 || n == 0 || k == 0 {
		return
	}
	check("A", ar, ac, lda, len(a))
	check("B", br, bc, ldb, len(b))
}

// aSource is where op(A) (m×k) comes from: a dense matrix (a, lda, trans), or, when pack is set,
// an implicit matrix whose panels pack writes in the layout of packA.
type aSource[T float] struct {
	trans   bool
	a       []T
	lda     int
	row0    int                                   // first row of op(A) this source covers (implicit matrices)
	pack    func(dst []T, i0, mb, p0, kb, mr int) // packs rows i0… and steps p0… of an implicit op(A)
	step0   int                                   // first step (column of op(A)) this source starts at
	conv    *convPacker                           // forward convolution: im2col(x) can be read in place
	inPlace bool                                  // a dense A read in place whatever the width of C
}

// readsInPlace reports whether a product with n columns (nr-wide tiles, mr-tall) reads this
// source in place rather than packing it: dense A when C has at most directAMaxTiles column
// tiles or inPlace is set; im2col(x) when C has at most convInPlaceMaxTiles column tiles and
// output rows hold at least two row tiles (convTile re-reads its segments for every column tile,
// and a tile that wraps to the next output row has to be packed).
func (s aSource[T]) readsInPlace(n, nr, mr int) bool {
	tiles := (n + nr - 1) / nr
	if s.conv != nil {
		return tiles <= convInPlaceMaxTiles && s.conv.g.OutW >= 2*mr
	}
	return s.pack == nil && (tiles <= directAMaxTiles || s.inPlace)
}

// fromStep returns the source of op(A)'s steps (columns) p0….
func (s aSource[T]) fromStep(p0 int) aSource[T] {
	switch {
	case s.pack != nil:
		s.step0 += p0
	case s.trans:
		s.a = s.a[p0*s.lda:]
	default:
		s.a = s.a[p0:]
	}
	return s
}

// packRows packs rows i0… (mb of them) and steps p0… (kb) of op(A) into dst, as packA does.
func (s aSource[T]) packRows(dst []T, i0, mb, p0, kb, mr int) {
	if s.pack != nil {
		s.pack(dst, i0, mb, s.step0+p0, kb, mr)
		return
	}
	packA(dst, s.trans, s.a, s.lda, i0, mb, p0, kb, mr)
}

// bSource is where op(B) (k×n) comes from: a dense matrix (b, ldb, trans), or, when pack is set,
// an implicit matrix whose panels pack writes in the layout of packB (without alpha).
type bSource[T float] struct {
	trans bool
	b     []T
	ldb   int
	pack  func(dst []T, j0, nb, p0, kb, nr int) // packs columns j0… and steps p0… of an implicit op(B)
	step0 int                                   // first step (row of op(B)) this source starts at
}

// fromStep returns the source of op(B)'s steps (rows) p0….
func (s bSource[T]) fromStep(p0 int) bSource[T] {
	switch {
	case s.pack != nil:
		s.step0 += p0
	case s.trans:
		s.b = s.b[p0:]
	default:
		s.b = s.b[p0*s.ldb:]
	}
	return s
}

// packCols packs alpha times steps p0… (kb) and columns j0… (nb) of op(B) into dst, as packB does.
func (s bSource[T]) packCols(dst []T, p0, kb, j0, nb int, alpha T, nr int) {
	if s.pack == nil {
		packB(dst, s.trans, s.b, s.ldb, p0, kb, j0, nb, alpha, nr)
		return
	}
	s.pack(dst, j0, nb, s.step0+p0, kb, nr)
	if alpha != 1 {
		for i := range dst[:(nb+nr-1)/nr*nr*kb] {
			dst[i] *= alpha
		}
	}
}

// gemm computes C = alpha·op(A)·op(B) + beta·C on validated arguments with a dense B.
func gemm[T float](kern *kernel[T], src aSource[T], transB bool, m, n, k int, alpha T, b []T, ldb int, beta T, c []T, ldc int, threads int) {
	gemmSrc(kern, src, bSource[T]{trans: transB, b: b, ldb: ldb}, m, n, k, alpha, beta, c, ldc, threads)
}

// gemmSrc computes C = alpha·op(A)·op(B) + beta·C for any sources of A and B: it handles the
// degenerate cases and picks the driver: direct dot products for tiny products, gemmSerial for
// small ones, gemmSplitK for long sums into small outputs, gemmColumns for wide products,
// gemmParallel otherwise.
func gemmSrc[T float](kern *kernel[T], src aSource[T], bsrc bSource[T], m, n, k int, alpha T, beta T, c []T, ldc int, threads int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if m*n*k <= smallProduct && src.pack == nil && bsrc.pack == nil {
		gemmSmall(src.trans, bsrc.trans, m, n, k, alpha, src.a, src.lda, bsrc.b, bsrc.ldb, beta, c, ldc)
		return
	}
	threads = min(threads, max(1, 2*m*n*k/minFlopsPerThread))
	// gemmSplitK's sums depend on the sizes only, and gemmParallel gives gemmSerial's bits: the
	// result is the same whatever threads is.
	if splitsK(m, n, k) {
		gemmSplitK(kern, src, bsrc, m, n, k, alpha, beta, c, ldc, threads)
		return
	}
	if threads <= 1 {
		gemmSerial(kern, src, bsrc, m, n, k, alpha, beta, c, ldc)
		return
	}
	if src.pack == nil && bsrc.pack == nil && n >= colSplitMinCols*threads {
		gemmColumns(kern, src, bsrc, m, n, k, alpha, beta, c, ldc, threads)
		return
	}
	gemmParallel(kern, src, bsrc, m, n, k, alpha, beta, c, ldc, threads)
}

// scaleC sets C = beta·C, writing zeros without reading C when beta == 0.
func scaleC[T float](m, n int, beta T, c []T, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// smallProduct is the largest m·n·k computed directly, without packing.
const smallProduct = 8 * 8 * 8

// gemmSmall computes a small product directly with a dot product per element of C.
func gemmSmall[T float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	as, ap := lda, 1 // stride between rows of op(A), between steps along k
	if transA {
		as, ap = 1, lda
	}
	bp, bs := ldb, 1 // stride between steps along k, between columns of op(B)
	if transB {
		bp, bs = 1, ldb
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s T
			ai, bj := i*as, j*bs
			for p := 0; p < k; p++ {
				s += a[ai+p*ap] * b[bj+p*bp]
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

// buffers is workspace: the packing panels of one gemmSerial call, the convolutions' blocks, and
// partial sums (in a alone).
type buffers[T float] struct {
	a, b, tile []T
	key        bufKey
}

// bufKey identifies a pool of workspace: the element type and the three sizes. A training step asks
// for the same few sizes every step, and each size has its own pool, so that a request is served by
// a buffer of its own size: one pool for all sizes handed small buffers to large requests, which
// then allocated anew every step, and a page of memory the process has not touched yet costs
// 10–20 µs to fault in on the machines the kernels run on.
type bufKey struct {
	f64           bool
	na, nb, ntile int
}

var bufPools sync.Map // bufKey → *sync.Pool of *buffers[T]

// getBuffers returns workspace with room for the given panel sizes (contents unspecified), from the
// pool of its type and sizes; putBuffers gives it back.
func getBuffers[T float](na, nb, ntile int) *buffers[T] {
	var zero T
	_, f64 := any(zero).(float64)
	key := bufKey{f64, na, nb, ntile}
	pool, ok := bufPools.Load(key)
	if !ok {
		pool, _ = bufPools.LoadOrStore(key, new(sync.Pool))
	}
	if buf, _ := pool.(*sync.Pool).Get().(*buffers[T]); buf != nil {
		return buf
	}
	return &buffers[T]{a: make([]T, na), b: make([]T, nb), tile: make([]T, ntile), key: key}
}

// putBuffers returns workspace to its pool.
func putBuffers[T float](buf *buffers[T]) {
	if pool, ok := bufPools.Load(buf.key); ok {
		pool.(*sync.Pool).Put(buf)
	}
}

// blockSize splits total into the fewest blocks of at most limit, of near-equal size rounded up
// to a multiple of unit.
func blockSize(total, limit, unit int) int {
	nBlocks := (total + limit - 1) / limit
	size := (total + nBlocks - 1) / nBlocks
	return (size + unit - 1) / unit * unit
}

// directAMaxTiles is the most nr-wide column tiles of C for which A is read in place instead of
// packed: with so few tiles each element of A is used only a few times, so packing costs more
// than it saves.
const directAMaxTiles = 4

// convInPlaceMaxTiles is the most column tiles for which convolutions read x in place (measured:
// 2–4× faster than packing for one tile, even at two, slower beyond).
const convInPlaceMaxTiles = 2

// gemmSerial runs the blocked algorithm on one goroutine: for each nc-wide column block of B and
// kc-deep slice of k, pack alpha·B, then for each mc-tall block of A pack it (or, for narrow C,
// read it in place) and run the micro-kernel over the mc×nc block of C.
func gemmSerial[T float](kern *kernel[T], src aSource[T], bsrc bSource[T], m, n, k int, alpha T, beta T, c []T, ldc int) {
	mr, nr := kern.mr, kern.nr
	kc := blockSize(k, kern.kc, 1)
	mc := blockSize(m, kern.mc, mr)
	nc := blockSize(n, kern.nc, nr)
	direct := src.readsInPlace(n, nr, mr)
	inPlaceB := bInPlace(kern, src, bsrc, m, alpha)
	buf := getBuffers[T](mc*kc, nc*kc, mr*nr+mr*kc)
	defer putBuffers(buf)
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			bv := bView[T]{packed: buf.b}
			if inPlaceB {
				bv = bsrc.inPlace(buf.b, pc, kb, jc, nb, nr)
			} else {
				bsrc.packCols(buf.b, pc, kb, jc, nb, alpha, nr)
			}
			blockBeta := beta
			if pc > 0 {
				blockBeta = 1
			}
			for ic := 0; ic < m; ic += mc {
				mb := min(mc, m-ic)
				av := aView[T]{a: buf.a, rs: 1, ps: mr, panel: kb}
				switch {
				case !direct:
					src.packRows(buf.a, ic, mb, pc, kb, mr)
				case src.conv != nil:
					av = aView[T]{conv: src.conv, pix0: ic, p0: src.step0 + pc, tail: buf.a}
				case src.trans:
					av = aView[T]{a: src.a, base: pc*src.lda + ic, rs: 1, ps: src.lda, next: 1, tail: buf.a}
				default:
					av = aView[T]{a: src.a, base: ic*src.lda + pc, rs: src.lda, ps: 1, next: src.lda, tail: buf.a}
				}
				if direct && mb%mr != 0 {
					// The last, partial row tile is packed (zero-padded) so the kernel reads no further.
					full := mb / mr * mr
					src.packRows(buf.a, ic+full, mb-full, pc, kb, mr)
				}
				macroKernel(kern, mb, nb, kb, av, bv, buf.tile, blockBeta, c[ic*ldc+jc:], ldc)
			}
		}
	}
}

// aView says where the micro-kernel finds the rows of an mb×kb block of A: either packed panels
// (tile at row ir starts at ir·panel, with rs=1, ps=mr), or the source matrix read in place (tile
// at row ir starts at base+ir·next, strides rs, ps), whose last partial tile is packed in tail.
type aView[T float] struct {
	a                 []T
	base, next, panel int
	rs, ps            int
	tail              []T         // non-nil when reading in place
	conv              *convPacker // non-nil: full tiles are im2col rows pix0+ir… at steps p0… (convTile)
	pix0, p0          int
}

// tile returns where the micro-kernel reads the rows ir… (rows of them, mr in a full tile) and
// their row and step strides.
func (av *aView[T]) tile(ir, rows, mr int) (ap *T, rs, ps int) {
	switch {
	case av.tail == nil:
		return &av.a[ir*av.panel], av.rs, av.ps
	case rows < mr:
		return &av.tail[0], 1, mr
	default:
		return &av.a[av.base+ir*av.next], av.rs, av.ps
	}
}

// bView says where the micro-kernel finds the columns of a kb×nb block of B: packed panels (panel
// at column jr starts at packed[jr·kb]), or, when b is set, op(B) read in place (column jr of step
// p at b[base + p·ld + jr]), whose last partial panel, if any, is packed at packed[0].
type bView[T float] struct {
	packed   []T
	b        []T
	base, ld int
}

// at returns the view of the columns jr… of v.
func (v bView[T]) at(jr, kb int) bView[T] {
	if v.b == nil {
		v.packed = v.packed[jr*kb:]
		return v
	}
	v.base += jr
	return v
}

// bInPlaceMaxRows is the most rows of C (and of op(A)) for which a dense, untransposed B is read
// in place instead of packed: with so few row tiles each element of B is used only a few times,
// so copying it costs more than reading it with a stride.
const bInPlaceMaxRows = 128

// bInPlace reports whether a product reads op(B) in place (kern.fnB): B dense and untransposed,
// alpha == 1 (packing would fold alpha in), A dense and at most bInPlaceMaxRows rows.
func bInPlace[T float](kern *kernel[T], src aSource[T], bsrc bSource[T], m int, alpha T) bool {
	return kern.fnB != nil && bsrc.pack == nil && !bsrc.trans && alpha == 1 && src.pack == nil &&
		src.conv == nil && m <= bInPlaceMaxRows
}

// inPlace returns the view of steps p0… (kb) and columns j0… (nb) of a dense, untransposed op(B)
// read in place; the last, partial panel (nb not a multiple of nr) is packed into tail.
func (s bSource[T]) inPlace(tail []T, p0, kb, j0, nb, nr int) bView[T] {
	if full := nb / nr * nr; full < nb {
		packB(tail, false, s.b, s.ldb, p0, kb, j0+full, nb-full, 1, nr)
	}
	return bView[T]{packed: tail, b: s.b, base: p0*s.ldb + j0, ld: s.ldb}
}

// macroKernel multiplies an mb×kb block of A by a kb×nb block of B into C (C = A·B + beta·C),
// one mr×nr tile at a time; partial tiles go through the tile buffer.
func macroKernel[T float](kern *kernel[T], mb, nb, kb int, av aView[T], bv bView[T], tile []T, beta T, c []T, ldc int) {
	mr, nr := kern.mr, kern.nr
	for jr := 0; jr < nb; jr += nr {
		cols := min(nr, nb-jr)
		var bp *T
		switch {
		case bv.b == nil:
			bp = &bv.packed[jr*kb]
		case cols == nr:
			bInPlaceTiles(kern, mb, kb, av, &bv.b[bv.base+jr], bv.ld, tile, beta, c[jr:], ldc)
			continue
		default:
			bp = &bv.packed[0] // the packed partial panel
		}
		for ir := 0; ir < mb; ir += mr {
			rows := min(mr, mb-ir)
			if av.conv != nil && rows == mr {
				if cols == nr {
					convTile(av.conv, kern, av.pix0+ir, av.p0, kb, bv.packed[jr*kb:], &c[ir*ldc+jr], ldc, beta, tile[mr*nr:])
					continue
				}
				convTile(av.conv, kern, av.pix0+ir, av.p0, kb, bv.packed[jr*kb:], &tile[0], nr, 0, tile[mr*nr:])
				mergeTile(tile, nr, rows, cols, beta, c[ir*ldc+jr:], ldc)
				continue
			}
			ap, rs, ps := av.tile(ir, rows, mr)
			if rows == mr && cols == nr {
				kern.fn(kb, ap, rs, ps, bp, &c[ir*ldc+jr], ldc, beta)
				continue
			}
			kern.fn(kb, ap, rs, ps, bp, &tile[0], nr, 0)
			mergeTile(tile, nr, rows, cols, beta, c[ir*ldc+jr:], ldc)
		}
	}
}

// bInPlaceTiles multiplies an mb×kb block of A by the nr columns of B at bp (step p at bp + p·ldb,
// read in place) into the mb×nr block of C, one mr-row tile at a time with kern.fnB.
func bInPlaceTiles[T float](kern *kernel[T], mb, kb int, av aView[T], bp *T, ldb int, tile []T, beta T, c []T, ldc int) {
	mr, nr := kern.mr, kern.nr
	for ir := 0; ir < mb; ir += mr {
		rows := min(mr, mb-ir)
		ap, rs, ps := av.tile(ir, rows, mr)
		if rows == mr {
			kern.fnB(kb, ap, rs, ps, bp, ldb, &c[ir*ldc], ldc, beta)
			continue
		}
		kern.fnB(kb, ap, rs, ps, bp, ldb, &tile[0], nr, 0)
		mergeTile(tile, nr, rows, nr, beta, c[ir*ldc:], ldc)
	}
}

// mergeTile sets the rows×cols corner of C to tile + beta·C (not reading C when beta == 0).
func mergeTile[T float](tile []T, nr, rows, cols int, beta T, c []T, ldc int) {
	for r := 0; r < rows; r++ {
		dst := c[r*ldc:][:cols]
		src := tile[r*nr : r*nr+cols]
		if beta == 0 {
			copy(dst, src)
			continue
		}
		for j, v := range src {
			dst[j] = v + beta*dst[j]
		}
	}
}
