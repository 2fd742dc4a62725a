package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ifa-toolkit/ifa/internal/atomicfile"
)

// The decoded-image cache of an image folder: decoding JPEG/PNG files on every run (and resizing
// them) costs far more than a training step's data needs, so ReadImageFolder decodes a split once
// into an array file next to it, root/.ifa-cache/<split>-<H>x<W>x<C>.u8, and maps that file into
// memory afterwards (the page cache serves it; nothing is decoded again).
//
// The file is a header, the labels and the pixels:
//
//	magic "IFAIMGC1" | uint32 header length | header JSON (fingerprint, N, H, W, C, classes)
//	| int32 labels [N] | uint8 images [N, H, W, C]
//
// The fingerprint hashes the split's file list with each file's size and modification time, and
// the decoding's size and channels: adding, removing, replacing or touching an image invalidates
// the cache, which is then rebuilt. The file is written atomically (a temporary file renamed); a
// folder that cannot be written is read without a cache. Every field is checked against the file's
// size before use.

const (
	cacheMagic   = "IFAIMGC1"
	cacheDir     = ".ifa-cache"
	maxCacheHead = 1 << 24 // a header of more than 16 MiB is not ifa's
)

// cacheHeader is the cache file's JSON header.
type cacheHeader struct {
	Fingerprint string   `json:"fingerprint"`
	N           int      `json:"n"`
	H           int      `json:"h"`
	W           int      `json:"w"`
	C           int      `json:"c"`
	Classes     []string `json:"classes"`
}

// folderFingerprint hashes the items (path relative to dir, size, modification time) and the
// decoding shape.
func folderFingerprint(dir string, paths []string, h, w, c int) (string, error) {
	sum := sha256.New()
	fmt.Fprintf(sum, "%dx%dx%d\n", h, w, c)
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("data: %w", err)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			rel = p
		}
		fmt.Fprintf(sum, "%s\x00%d\x00%d\n", rel, st.Size(), st.ModTime().UnixNano())
	}
	return fmt.Sprintf("%x", sum.Sum(nil)), nil
}

// cachePath is the cache file of a split decoded at h×w×c.
func cachePath(root, split string, h, w, c int) string {
	return filepath.Join(root, cacheDir, fmt.Sprintf("%s-%dx%dx%d.u8", split, h, w, c))
}

// readCache maps the cache file at path and returns its labels and images when its header matches
// want; ok false (and no error) when the file is missing or stale.
func readCache(path string, want cacheHeader) (labels []int32, images []uint8, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, false, nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, false, nil
	}
	size := st.Size()
	pre := make([]byte, len(cacheMagic)+4)
	if _, err := f.ReadAt(pre, 0); err != nil || string(pre[:len(cacheMagic)]) != cacheMagic {
		return nil, nil, false, nil
	}
	hl := int64(binary.LittleEndian.Uint32(pre[len(cacheMagic):]))
	if hl > maxCacheHead || int64(len(pre))+hl > size {
		return nil, nil, false, nil
	}
	raw := make([]byte, hl)
	if _, err := f.ReadAt(raw, int64(len(pre))); err != nil {
		return nil, nil, false, nil
	}
	var got cacheHeader
	if err := json.Unmarshal(raw, &got); err != nil || got.Fingerprint != want.Fingerprint || got.N != want.N ||
		got.H != want.H || got.W != want.W || got.C != want.C || len(got.Classes) != len(want.Classes) {
		return nil, nil, false, nil
	}
	for i := range got.Classes {
		if got.Classes[i] != want.Classes[i] {
			return nil, nil, false, nil
		}
	}
	off := int64(len(pre)) + hl
	n, img := int64(want.N), int64(want.H*want.W*want.C)
	if size != off+4*n+n*img {
		return nil, nil, false, nil
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, false, fmt.Errorf("data: cache %s: map: %w", path, err)
	}
	labels = make([]int32, n)
	if err := binary.Read(bytes.NewReader(m[off:off+4*n]), binary.LittleEndian, labels); err != nil {
		_ = syscall.Munmap(m)
		return nil, nil, false, nil
	}
	for _, l := range labels {
		if l < 0 || int(l) >= len(want.Classes) {
			_ = syscall.Munmap(m)
			return nil, nil, false, nil
		}
	}
	return labels, m[off+4*n:], true, nil
}

// writeCache writes ds's labels and images under header h to path, atomically.
func writeCache(path string, h cacheHeader, ds *Dataset) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	head, err := json.Marshal(h)
	if err != nil {
		return err
	}
	tmp, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer tmp.Abort()
	var buf bytes.Buffer
	buf.WriteString(cacheMagic)
	_ = binary.Write(&buf, binary.LittleEndian, uint32(len(head)))
	buf.Write(head)
	_ = binary.Write(&buf, binary.LittleEndian, ds.Labels)
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		return err
	}
	if _, err := tmp.Write(ds.Images); err != nil {
		return err
	}
	return tmp.Commit(0o644)
}
