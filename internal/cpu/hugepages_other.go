//go:build !linux

package cpu

// hugePageMinBytes is the size from which a new buffer would be advised to use huge pages (Linux
// only).
const hugePageMinBytes = 2 << 20

// adviseHugePages does nothing off Linux.
func adviseHugePages(flat any) {}
