package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// maxThreads caps the goroutines of every kernel of the process (0: no cap); see SetMaxThreads.
var maxThreads atomic.Int64

// SetMaxThreads caps the number of goroutines every kernel of the process splits its work over at
// n (n ≤ 0 removes the cap) and returns the previous cap (0 when there was none). The default is
// runtime.GOMAXPROCS. Results do not depend on it: only the speed does.
func SetMaxThreads(n int) int {
	return int(maxThreads.Swap(int64(max(n, 0))))
}

// Threads is the number of goroutines a kernel splits its work over: runtime.GOMAXPROCS, capped by
// SetMaxThreads.
func Threads() int {
	n := runtime.GOMAXPROCS(0)
	if c := int(maxThreads.Load()); c > 0 && c < n {
		return c
	}
	return n
}

// itemsPerThread is how many work items gemmParallel aims to give each goroutine in each kc-deep
// slice of k, so that a goroutine slowed by other load on its core simply takes fewer items.
const itemsPerThread = 4

// aGroupPanels and bGroupPanels are the micro-panels of A and of B packed as one unit by
// gemmParallel: small enough that two goroutines starting on the same rows share their packing.
const (
	aGroupPanels = 4
	bGroupPanels = 8
)

// waitSpins is how many times a goroutine of gemmParallel yields while it waits for another
// before it sleeps: long enough for a pack group or a block of C in progress, short enough not to
// burn a core whose other goroutine has been descheduled by other load.
const waitSpins = 100

// gate lets the goroutines of one parallel region wait for each other's progress (counters they
// increase): a short spin, then sleep until signalled.
type gate struct {
	mu      sync.Mutex
	cond    sync.Cond
	waiters atomic.Int32
}

// wait returns once ready() holds; ready must become true through state changed before a signal.
func (g *gate) wait(ready func() bool) {
	for range waitSpins {
		if ready() {
			return
		}
		runtime.Gosched()
	}
	g.mu.Lock()
	g.waiters.Add(1)
	for !ready() {
		g.cond.Wait()
	}
	g.waiters.Add(-1)
	g.mu.Unlock()
}

// signal wakes the waiters, if any, after a change of the state they wait on.
func (g *gate) signal() {
	if g.waiters.Load() > 0 {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	}
}

// gemmParallel is the multi-goroutine form of gemmSerial, on goroutines woken once per nc-wide
// column block of B (so once per call for most products). In each kc-deep slice of k, the
// goroutines take in turn the groups of A and B panels to pack, then the blocks of C (rows ×
// columns) to multiply, with no barrier between slices: a block waits only until its slice's
// panels are packed and the same block of C is done for the previous slice, so a goroutine goes
// on to the next slice's packing while the other finishes its last block. Slices are packed into
// two buffers in turn (packing slice q waits until the blocks of slice q-2 are done). Every
// element of C gets gemmSerial's sums in gemmSerial's order.
func gemmParallel[T float](kern *kernel[T], src aSource[T], bsrc bSource[T], m, n, k int, alpha T, beta T, c []T, ldc int, threads int) {
	mr, nr := kern.mr, kern.nr
	kc := blockSize(k, kern.kc, 1)
	nc := blockSize(n, kern.nc, nr)
	direct := src.readsInPlace(n, nr, mr)
	inPlaceB := bInPlace(kern, src, bsrc, m, alpha)
	mPanels := (m + mr - 1) / mr
	full := m / mr * mr // rows in full tiles

	// Work items: rowChunk rows (a multiple of mr) × colChunk columns (a multiple of nr).
	rowChunk := blockSize(m, kern.mc, mr)
	rowItems := (m + rowChunk - 1) / rowChunk
	target := itemsPerThread * threads
	// Tall items keep each packed B micro-panel in L1 for many row tiles, so columns are split
	// first; rows are cut below mc only when the column tiles are too few.
	colTiles := (min(nc, n) + nr - 1) / nr
	if rowItems*colTiles < target && mPanels > rowItems {
		want := (target + colTiles - 1) / colTiles
		rowChunk = max(mr, (mPanels+want-1)/want*mr)
		rowItems = (m + rowChunk - 1) / rowChunk
	}

	// With at least two row blocks per goroutine, a block spans the whole column block and packs
	// its own rows of A into its goroutine's buffer, just before it uses them: no panel of A is
	// packed twice or read from the other core's cache.
	privateA := !direct && rowItems >= 2*threads

	// Packed panels of one slice of k shared by the blocks: all of A's rows (only the partial row
	// tile when A is read in place, none when the blocks pack their own) and all of the column
	// block of B (only the partial panel when B is read in place).
	aGroups := (mPanels + aGroupPanels - 1) / aGroupPanels
	aSlice := mPanels * mr * kc
	switch {
	case privateA:
		aGroups, aSlice = 0, 0
	case direct:
		aGroups, aSlice = 0, mr*kc
		if full < m {
			aGroups = 1
		}
	}
	ownA := 0
	if privateA {
		ownA = rowChunk * kc
	}
	bSlice := (min(nc, n) + nr - 1) / nr * nr * kc
	if inPlaceB {
		bSlice = nr * kc
	}
	slices := (k + kc - 1) / kc
	nbuf := min(2, slices) // slice q packs into buffer q%2
	shared := getBuffers[T](nbuf*aSlice, nbuf*bSlice, 0)
	defer putBuffers(shared)
	tiles := make([]*buffers[T], threads)
	for t := range tiles {
		tiles[t] = getBuffers[T](ownA, 0, mr*nr+mr*kc)
		defer putBuffers(tiles[t])
	}
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		nPanels := (nb + nr - 1) / nr
		bGroups := (nPanels + bGroupPanels - 1) / bGroupPanels
		if inPlaceB {
			bGroups = 0
			if nb%nr != 0 {
				bGroups = 1
			}
		}
		colChunk := nb
		if rowItems < target && !privateA {
			want := (target + rowItems - 1) / rowItems
			colChunk = max(nr, (nPanels+want-1)/want*nr)
		}
		colItems := (nb + colChunk - 1) / colChunk
		blocks := rowItems * colItems
		packs := aGroups + bGroups
		perSlice := packs + blocks
		packed := make([]atomic.Int32, slices)   // pack groups done, per slice
		finished := make([]atomic.Int32, slices) // blocks of C done, per slice
		done := make([]atomic.Bool, slices*blocks)
		var g gate
		g.cond.L = &g.mu
		parallelFor(threads, slices*perSlice, func(w, item int) {
			q, it := item/perSlice, item%perSlice
			pc := q * kc
			kb := min(kc, k-pc)
			abuf := shared.a[q%nbuf*aSlice : (q%nbuf+1)*aSlice]
			bbuf := shared.b[q%nbuf*bSlice : (q%nbuf+1)*bSlice]
			if it < packs {
				if q >= nbuf { // the buffer of slice q-2 is free once its blocks are done
					g.wait(func() bool { return int(finished[q-nbuf].Load()) == blocks })
				}
				switch {
				case it < bGroups && inPlaceB:
					bsrc.inPlace(bbuf, pc, kb, jc, nb, nr) // packs the partial panel
				case it < bGroups:
					lo := it * bGroupPanels * nr
					hi := min(nb, lo+bGroupPanels*nr)
					bsrc.packCols(bbuf[lo*kb:], pc, kb, jc+lo, hi-lo, alpha, nr)
				case direct:
					src.packRows(abuf, full, m-full, pc, kb, mr) // the partial row tile
				default:
					lo := (it - bGroups) * aGroupPanels * mr
					hi := min(m, lo+aGroupPanels*mr)
					src.packRows(abuf[lo*kb:], lo, hi-lo, pc, kb, mr)
				}
				packed[q].Add(1)
				g.signal()
				return
			}
			blk := it - packs
			ic := blk / colItems * rowChunk
			jr := blk % colItems * colChunk
			mb, cols := min(rowChunk, m-ic), min(colChunk, nb-jr)
			bv := bView[T]{packed: bbuf}
			if inPlaceB {
				bv = bView[T]{packed: bbuf, b: bsrc.b, base: pc*bsrc.ldb + jc, ld: bsrc.ldb}
			}
			var av aView[T]
			switch {
			case privateA:
				av = aView[T]{a: tiles[w].a, rs: 1, ps: mr, panel: kb}
			case !direct:
				av = aView[T]{a: abuf[ic*kb:], rs: 1, ps: mr, panel: kb}
			case src.conv != nil:
				av = aView[T]{conv: src.conv, pix0: ic, p0: src.step0 + pc, tail: abuf}
			case src.trans:
				av = aView[T]{a: src.a, base: pc*src.lda + ic, rs: 1, ps: src.lda, next: 1, tail: abuf}
			default:
				av = aView[T]{a: src.a, base: ic*src.lda + pc, rs: src.lda, ps: 1, next: src.lda, tail: abuf}
			}
			blockBeta := beta
			if pc > 0 {
				blockBeta = 1
			}
			g.wait(func() bool {
				return int(packed[q].Load()) == packs && (q == 0 || done[(q-1)*blocks+blk].Load())
			})
			if privateA {
				src.packRows(tiles[w].a, ic, mb, pc, kb, mr)
			}
			macroKernel(kern, mb, cols, kb, av, bv.at(jr, kb), tiles[w].tile, blockBeta, c[ic*ldc+jc+jr:], ldc)
			done[q*blocks+blk].Store(true)
			finished[q].Add(1)
			g.signal()
		})
	}
}

// colSplitMinCols is the least number of columns of C per goroutine for which gemmColumns
// splits a product with dense operands: enough that packing all of A once per goroutine costs
// little beside the work (im2col sources, dearer to pack, are never split this way).
const colSplitMinCols = 128

// gemmColumns splits C into one run of whole nr-wide column tiles per goroutine, each computed by
// gemmSerial with its own packing buffers: no panel is shared between the cores (on 2 Zen 5
// cores, 1024³ ran 15% and 256³ 60% faster than with gemmParallel's shared panels), at the cost
// of packing A once per goroutine and of a fixed share of the work per goroutine. The tiles and
// the sums are gemmSerial's, so are the bits.
func gemmColumns[T float](kern *kernel[T], src aSource[T], bsrc bSource[T], m, n, k int, alpha T, beta T, c []T, ldc int, threads int) {
	nr := kern.nr
	tiles := (n + nr - 1) / nr
	parallelFor(threads, threads, func(_, part int) {
		j0, j1 := part*tiles/threads*nr, min(n, (part+1)*tiles/threads*nr)
		if j0 >= j1 {
			return
		}
		b := bsrc
		if b.trans {
			b.b = b.b[j0*b.ldb:]
		} else {
			b.b = b.b[j0:]
		}
		gemmSerial(kern, src, b, m, j1-j0, k, alpha, beta, c[j0:], ldc)
	})
}

// Products with at least splitKMinSteps steps, k ≥ 2·max(m, n), at most splitKMaxOutput elements
// of C (weight gradients: small outputs, long sums) and work for at least two goroutines are split
// along k, whatever the number of goroutines (one included), so their sums do not depend on it.
const (
	splitKMinSteps   = 1024
	splitKMaxOutput  = 1 << 20
	splitKChunkSteps = 512 // the fewest steps of one part
	// splitKMaxParts is the most parts: 12 spreads evenly over 1, 2, 3, 4 and 6 goroutines.
	splitKMaxParts = 12
	// splitKPartsElems caps the elements of all the parts' partial sums together (at least two
	// parts are kept).
	splitKPartsElems = 4 << 20
)

// splitsK reports whether an m×n×k product is computed as a sum over parts of k (gemmSplitK).
// It depends on the sizes only, never on the number of goroutines.
func splitsK(m, n, k int) bool {
	return k >= splitKMinSteps && k >= 2*max(m, n) && m*n <= splitKMaxOutput && 2*m*n*k >= 2*minFlopsPerThread
}

// splitKParts is the number of parts of k of a split product: a function of the sizes only, so that
// the partial sums, and their total, are the same bits on any number of goroutines.
func splitKParts(m, n, k int) int {
	return max(1, min(k/splitKChunkSteps, splitKMaxParts, max(2, splitKPartsElems/(m*n))))
}

// gemmSplitK computes the product as a sum over a fixed number of contiguous parts of k (see
// splitKParts): the goroutines take the parts in turn and compute each into its own m×n buffer
// with gemmSerial, and the buffers are then added into C in part order. Neither the parts nor the
// order of the sums depend on the number of goroutines or on which one ran which part.
func gemmSplitK[T float](kern *kernel[T], src aSource[T], bsrc bSource[T], m, n, k int, alpha T, beta T, c []T, ldc int, threads int) {
	parts := splitKParts(m, n, k)
	threads = min(threads, parts)
	buf := getBuffers[T](parts*m*n, 0, 0)
	defer putBuffers(buf)
	acc := make([][]T, parts)
	for p := range acc {
		acc[p] = buf.a[p*m*n : (p+1)*m*n]
	}
	parallelFor(threads, parts, func(_, p int) {
		p0, p1 := p*k/parts, (p+1)*k/parts
		gemmSerial(kern, src.fromStep(p0), bsrc.fromStep(p0), m, n, p1-p0, alpha, 0, acc[p], n)
	})
	// C = beta·C + ((acc₀ + acc₁) + acc₂) + …, by blocks of rows.
	const rowsPerItem = 32
	parallelFor(threads, (m+rowsPerItem-1)/rowsPerItem, func(_, item int) {
		for i := item * rowsPerItem; i < min(m, (item+1)*rowsPerItem); i++ {
			row := c[i*ldc : i*ldc+n]
			first := acc[0][i*n : i*n+n]
			switch beta {
			case 0:
				copy(row, first)
			default:
				for j, v := range first {
					row[j] = beta*row[j] + v
				}
			}
			for _, b := range acc[1:] {
				for j, v := range b[i*n : i*n+n] {
					row[j] += v
				}
			}
		}
	})
}
