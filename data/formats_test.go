package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Writers of the exact on-disk formats, for tests.

func idxImagesBytes(n, rows, cols int, pix []byte) []byte {
	var b bytes.Buffer
	for _, v := range []uint32{idxImageMagic, uint32(n), uint32(rows), uint32(cols)} {
		_ = binary.Write(&b, binary.BigEndian, v)
	}
	b.Write(pix)
	return b.Bytes()
}

func idxLabelsBytes(labels []byte) []byte {
	var b bytes.Buffer
	for _, v := range []uint32{idxLabelMagic, uint32(len(labels))} {
		_ = binary.Write(&b, binary.BigEndian, v)
	}
	b.Write(labels)
	return b.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tinyMNIST is a deterministic little IDX set: image i's pixel j is (7i + 3j) mod 256, label i mod 10.
type tinyMNIST struct {
	n, rows, cols int
}

func (m tinyMNIST) pix() []byte {
	p := make([]byte, m.n*m.rows*m.cols)
	for i := range m.n {
		for j := range m.rows * m.cols {
			p[i*m.rows*m.cols+j] = byte((7*i + 3*j) % 256)
		}
	}
	return p
}

func (m tinyMNIST) labels() []byte {
	l := make([]byte, m.n)
	for i := range l {
		l[i] = byte(i % 10)
	}
	return l
}

// write puts the split's two files in dir, gzipped or not.
func (m tinyMNIST) write(t testing.TB, dir, prefix string, gz bool) {
	img := idxImagesBytes(m.n, m.rows, m.cols, m.pix())
	lbl := idxLabelsBytes(m.labels())
	ext := ""
	if gz {
		img, lbl, ext = gzipBytes(t, img), gzipBytes(t, lbl), ".gz"
	}
	writeFile(t, filepath.Join(dir, prefix+"-images-idx3-ubyte"+ext), img)
	writeFile(t, filepath.Join(dir, prefix+"-labels-idx1-ubyte"+ext), lbl)
}

// cifarRecord builds one record: label bytes then the R, G, B planes of a 32×32 image whose pixel
// (y, x, c) is f(y, x, c).
func cifarRecord(labels []byte, f func(y, x, c int) byte) []byte {
	r := append([]byte{}, labels...)
	for c := range 3 {
		for y := range 32 {
			for x := range 32 {
				r = append(r, f(y, x, c))
			}
		}
	}
	return r
}

func cifarPixel(i int) func(y, x, c int) byte {
	return func(y, x, c int) byte { return byte(i*31 + y*5 + x*3 + c*101) }
}

func tarGz(t testing.TB, files map[string][]byte, order []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	dirs := map[string]bool{}
	for _, name := range order {
		if d := filepath.Dir(name); d != "." && !dirs[d] {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
		}
		b := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tinyCIFAR10 returns the files of a CIFAR-10 binary set with per images in each of the 5 training
// batches and the test batch; image k of the whole training set has label k mod 10 and pixels
// cifarPixel(k); test image k has label (k+3) mod 10 and pixels cifarPixel(1000+k).
func tinyCIFAR10(per int) (map[string][]byte, []string) {
	files := map[string][]byte{}
	var order []string
	meta := "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"
	files["cifar-10-batches-bin/batches.meta.txt"] = []byte(meta)
	order = append(order, "cifar-10-batches-bin/batches.meta.txt")
	for b := 1; b <= 5; b++ {
		var rec []byte
		for i := range per {
			k := (b-1)*per + i
			rec = append(rec, cifarRecord([]byte{byte(k % 10)}, cifarPixel(k))...)
		}
		name := "cifar-10-batches-bin/data_batch_" + string(rune('0'+b)) + ".bin"
		files[name] = rec
		order = append(order, name)
	}
	var rec []byte
	for k := range per {
		rec = append(rec, cifarRecord([]byte{byte((k + 3) % 10)}, cifarPixel(1000+k))...)
	}
	files["cifar-10-batches-bin/test_batch.bin"] = rec
	// Put the test batch first: readers must not depend on the member order.
	order = append([]string{"cifar-10-batches-bin/test_batch.bin"}, order...)
	return files, order
}

// tinyCIFAR100 returns the files of a CIFAR-100 binary set: n training images with coarse label
// k mod 20 and fine label (7k) mod 100, and n test images.
func tinyCIFAR100(n int) (map[string][]byte, []string) {
	files := map[string][]byte{}
	var fine, coarse []string
	for i := range 100 {
		fine = append(fine, "fine_"+string(rune('a'+i/26))+string(rune('a'+i%26)))
	}
	for i := range 20 {
		coarse = append(coarse, "coarse_"+string(rune('a'+i)))
	}
	files["cifar-100-binary/fine_label_names.txt"] = []byte(strings.Join(fine, "\n") + "\n")
	files["cifar-100-binary/coarse_label_names.txt"] = []byte(strings.Join(coarse, "\n") + "\n")
	for _, split := range []string{"train", "test"} {
		var rec []byte
		for k := range n {
			off := 0
			if split == "test" {
				off = 500
			}
			rec = append(rec, cifarRecord([]byte{byte((k + off) % 20), byte((7 * (k + off)) % 100)}, cifarPixel(k+off))...)
		}
		files["cifar-100-binary/"+split+".bin"] = rec
	}
	return files, []string{"cifar-100-binary/coarse_label_names.txt", "cifar-100-binary/train.bin",
		"cifar-100-binary/fine_label_names.txt", "cifar-100-binary/test.bin"}
}

func writeTree(t testing.TB, root string, files map[string][]byte) {
	for name, b := range files {
		writeFile(t, filepath.Join(root, name), b)
	}
}
