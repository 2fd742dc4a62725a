//go:build linux

package cpu

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// TestNewBuffersAdvisedHugePages: a new float32 buffer of 8 MiB from the pool lies in a mapping
// flagged for huge pages (VmFlags "hg" in /proc/self/smaps) and keeps what is written to it.
func TestNewBuffersAdvisedHugePages(t *testing.T) {
	var p bufferPool
	p.init()
	big := p.get(dtypes.Float32, 2<<20).([]float32)
	for i := range big {
		big[i] = float32(i)
	}
	for _, i := range []int{0, 1 << 19, len(big) - 1} {
		if big[i] != float32(i) {
			t.Fatalf("element %d = %v after the advice", i, big[i])
		}
	}
	// The first whole 2 MiB page inside the buffer.
	addr := (uintptr(unsafe.Pointer(&big[0])) + (2<<20 - 1)) &^ (2<<20 - 1)
	flags, err := vmFlags(addr)
	if err != nil {
		t.Skipf("cannot read the mapping's flags: %v", err)
	}
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("mapping of the buffer at %#x has VmFlags %q, want hg", addr, flags)
	}
}

// vmFlags returns the VmFlags of the mapping of this process that contains addr.
func vmFlags(addr uintptr) (string, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	inside := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 && strings.Contains(line, " ") {
			inside = addr >= lo && addr < hi
			continue
		}
		if inside && strings.HasPrefix(line, "VmFlags:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmFlags:")), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no mapping holds %#x", addr)
}
