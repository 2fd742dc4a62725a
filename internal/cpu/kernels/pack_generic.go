//go:build !amd64 || purego

package kernels

// copyRows32 reports false: this build has no vector packing loops (see pack_amd64.go).
func copyRows32[T float](dst, src []T, base, lds, rows int) bool { return false }

// copyRows reports false: this build has no vector packing loops (see pack_amd64.go).
func copyRows[T float](dst []T, ldd int, src []T, base, lds, width, rows int) bool { return false }

// transposeRows returns 0: this build has no vector packing loops (see pack_amd64.go).
func transposeRows[T float](dst []T, ld int, src []T, base, lss, rows, steps int) int { return 0 }

// gatherSteps returns 0: this build has no vector packing loops (see pack_amd64.go).
func gatherSteps(dst []float32, ld int, rows *[16][]float32, lanes, steps int) int { return 0 }

func copyRuns14(dst, src []float32, base1, base2, lds, n1, rows int) bool { return false }

// pixelRun is unused in this build (see pack_amd64.go).
type pixelRun struct {
	src      *float32
	stepMask int
	dstOff   int
	mask     uint64
}

func packPixels(dst []float32, runs []pixelRun, pixels, lds int) bool { return false }
