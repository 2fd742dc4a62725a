//go:build !amd64 || purego

package cpu

// The portable row kernels (this build has no 8-lane ones).

func sumRow32(x []float32) float64                   { return sumRow32s(x) }
func maxRow32(x []float32) float32                   { return maxRow32s(x) }
func minRow32(x []float32) float32                   { return minRow32s(x) }
func addRows32(acc []float64, x []float32, cols int) { addRows(acc, x, cols) }
