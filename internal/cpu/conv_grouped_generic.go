//go:build !amd64 || purego

package cpu

// mulAddBlocks returns 0: this build has no 8-lane loops (mulAddRow's loop is used).
func mulAddBlocks(dst, a, b []float32) int { return 0 }
