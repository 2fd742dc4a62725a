//go:build !amd64 || purego

package cpu

import "github.com/gomlx/gomlx/backends"

// compareVSBlocks returns 0: this build has no 8-lane loops (fusedCompare's loops are used).
func compareVSBlocks(op backends.OpType, d, a, t []float32) int { return 0 }

// whereBlocks returns 0: this build has no 8-lane loops (fusedWhere's loops are used).
func whereBlocks(d, c, t, f []float32, fS bool) int { return 0 }

// affineReLURows reports false: this build has no 16-lane loops (the fused program runs).
func affineReLURows(out, x, a, b, s, x2, a2, b2, z []float32) bool { return false }

// fusedLoopsAvailable reports false: this build has no 16-lane loops.
func fusedLoopsAvailable() bool { return false }

// reluGradElems reports false: this build has no 16-lane loops (the fused program runs).
func reluGradElems(out, y, g, g2, z, f []float32) bool { return false }

// reluGradMaskElems is reluGradMaskElemsGo: this build has no 16-lane loops.
func reluGradMaskElems(out []float32, mask []uint32, g, g2, f []float32) {
	reluGradMaskElemsGo(out, mask, g, g2, f)
}
