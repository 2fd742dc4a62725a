//go:build linux

package cpu

import (
	"reflect"
	"syscall"
	"unsafe"
)

// hugePageMinBytes is the size from which a new buffer is advised to be backed by transparent
// huge pages.
const hugePageMinBytes = 2 << 20

// adviseHugePages asks the kernel to back the whole 2 MiB pages inside a new buffer's storage with
// transparent huge pages (madvise MADV_HUGEPAGE; honoured when the system's THP mode is "madvise"
// or "always"): one page fault per 2 MiB instead of 512, and fewer TLB misses for the large
// activations the convolutions pack and the batch norms stream. Measured on the resnet8x4 training
// step (batch 64): 0-5% faster, median 2.5%, over six alternating runs. The advice is a hint: an
// error changes nothing.
func adviseHugePages(flat any) {
	v := reflect.ValueOf(flat)
	if v.Kind() != reflect.Slice || v.Len() == 0 {
		return
	}
	size := v.Len() * int(v.Type().Elem().Size())
	if size < hugePageMinBytes {
		return
	}
	ptr := v.UnsafePointer()
	const page = 2 << 20
	base := uintptr(ptr)
	start := (base + page - 1) &^ (page - 1)
	end := (base + uintptr(size)) &^ (page - 1)
	if end <= start {
		return
	}
	region := unsafe.Slice((*byte)(unsafe.Add(ptr, start-base)), end-start)
	_ = syscall.Madvise(region, syscall.MADV_HUGEPAGE)
}
