package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// IDX magic numbers: two zero bytes, the element type (0x08: unsigned byte), the number of dimensions.
const (
	idxUbyte      = 0x08
	idxImageMagic = 0x00000803 // ubyte, 3 dimensions: [N, rows, cols]
	idxLabelMagic = 0x00000801 // ubyte, 1 dimension: [N]
)

// maxFileBytes bounds what a reader loads from one (decompressed) file: far above any supported
// dataset, it keeps a corrupt or hostile file from exhausting memory.
const maxFileBytes = 4 << 30

// FashionMNISTClasses are Fashion-MNIST's class names, label order.
func FashionMNISTClasses() []string {
	return []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
}

// MNISTClasses are MNIST's class names (the digits), label order.
func MNISTClasses() []string {
	return []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
}

// ReadFashionMNIST reads split ("train" or "test") of Fashion-MNIST from dir, which holds the four IDX
// files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-..., gzipped or not).
func ReadFashionMNIST(dir, split string, opts ...Option) (*Dataset, error) {
	return readMNISTLike(FashionMNIST, FashionMNISTClasses(), dir, split, buildOptions(opts))
}

// ReadMNIST reads split ("train" or "test") of MNIST from dir, which holds the four IDX files
// (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-..., gzipped or not).
func ReadMNIST(dir, split string, opts ...Option) (*Dataset, error) {
	return readMNISTLike(MNIST, MNISTClasses(), dir, split, buildOptions(opts))
}

func readMNISTLike(name string, classes []string, dir, split string, o Options) (*Dataset, error) {
	var prefix string
	var want int
	switch split {
	case "train":
		prefix, want = "train", 60000
	case "test":
		prefix, want = "t10k", 10000
	default:
		return nil, fmt.Errorf("data: %s: unknown split %q: want train or test", name, split)
	}
	find := func(kind, idx string) (string, error) {
		base := filepath.Join(dir, prefix+"-"+kind)
		cands := []string{base + "-" + idx + "-ubyte.gz", base + "-" + idx + "-ubyte", base + "." + idx + "-ubyte.gz", base + "." + idx + "-ubyte"}
		p, ok := firstExisting(cands...)
		if !ok {
			return "", &notFound{fmt.Sprintf("data: %s %s: no %s file in %s (looked for %s-%s-%s-ubyte[.gz])", name, split, kind, dir, prefix, kind, idx)}
		}
		return p, nil
	}
	imgPath, err := find("images", "idx3")
	if err != nil {
		return nil, err
	}
	lblPath, err := find("labels", "idx1")
	if err != nil {
		return nil, err
	}
	ds, err := ReadIDX(imgPath, lblPath, classes)
	if err != nil {
		return nil, err
	}
	ds.Name, ds.Split, ds.Source = name, split, dir
	if !o.AnyCount && ds.Len() != want {
		return nil, fmt.Errorf("data: %s %s: file %s: %d images, want %d", name, split, imgPath, ds.Len(), want)
	}
	return ds, nil
}

// ReadIDX reads an IDX image file ([N, rows, cols] unsigned bytes) and its IDX label file ([N] unsigned
// bytes, each < len(classes)); either may be gzipped. The result has C = 1.
func ReadIDX(imagesPath, labelsPath string, classes []string) (*Dataset, error) {
	raw, err := readFileMaybeGzip(imagesPath)
	if err != nil {
		return nil, err
	}
	dims, pix, err := parseIDX(raw, idxImageMagic)
	if err != nil {
		return nil, fmt.Errorf("data: idx: file %s: %w", imagesPath, err)
	}
	raw, err = readFileMaybeGzip(labelsPath)
	if err != nil {
		return nil, err
	}
	ldims, lbl, err := parseIDX(raw, idxLabelMagic)
	if err != nil {
		return nil, fmt.Errorf("data: idx: file %s: %w", labelsPath, err)
	}
	if ldims[0] != dims[0] {
		return nil, fmt.Errorf("data: idx: file %s: %d labels for the %d images of %s", labelsPath, ldims[0], dims[0], imagesPath)
	}
	labels, err := idxLabels(lbl, len(classes))
	if err != nil {
		return nil, fmt.Errorf("data: idx: file %s: %w", labelsPath, err)
	}
	ds := &Dataset{Images: pix, Labels: labels, Classes: classes, H: dims[1], W: dims[2], C: 1}
	if err := ds.Validate(); err != nil {
		return nil, err
	}
	return ds, nil
}

// idxLabels converts IDX label bytes to int32 labels, checking each is below numClasses.
func idxLabels(b []byte, numClasses int) ([]int32, error) {
	labels := make([]int32, len(b))
	for i, v := range b {
		if int(v) >= numClasses {
			return nil, fmt.Errorf("record %d: label %d > %d", i, v, numClasses-1)
		}
		labels[i] = int32(v)
	}
	return labels, nil
}

// parseIDX checks an IDX file's header against the wanted magic number (which fixes the type and the
// rank) and that the payload holds exactly the product of the dimensions. It returns the dimensions
// and the payload (aliasing b).
func parseIDX(b []byte, magic uint32) (dims []int, payload []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%d bytes: too short for an IDX header", len(b))
	}
	got := binary.BigEndian.Uint32(b)
	if got != magic {
		return nil, nil, fmt.Errorf("magic number 0x%08x, want 0x%08x (IDX unsigned bytes, %d dimensions)", got, magic, magic&0xff)
	}
	rank := int(magic & 0xff)
	head := 4 + 4*rank
	if len(b) < head {
		return nil, nil, fmt.Errorf("%d bytes: too short for an IDX header of %d dimensions", len(b), rank)
	}
	dims = make([]int, rank)
	size := uint64(1)
	for i := range rank {
		d := binary.BigEndian.Uint32(b[4+4*i:])
		if d == 0 && i > 0 {
			return nil, nil, fmt.Errorf("dimension %d is 0", i)
		}
		dims[i] = int(d)
		size *= uint64(d)
		if size > maxFileBytes {
			return nil, nil, fmt.Errorf("header dimensions exceed %d bytes", uint64(maxFileBytes))
		}
	}
	if n := uint64(len(b) - head); n != size {
		what := "truncated"
		if n > size {
			what = "trailing bytes"
		}
		return nil, nil, fmt.Errorf("%s: %d data bytes, the header's dimensions %v want %d", what, n, dims, size)
	}
	return dims, b[head:], nil
}

// readFileMaybeGzip reads a whole file, decompressing it when it starts with the gzip magic bytes.
func readFileMaybeGzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	b, err := readMaybeGzip(br)
	if err != nil {
		return nil, fmt.Errorf("data: file %s: %w", path, err)
	}
	return b, nil
}

// readMaybeGzip reads all of r, decompressing it when it starts with the gzip magic bytes.
func readMaybeGzip(r *bufio.Reader) ([]byte, error) {
	head, _ := r.Peek(2)
	var src io.Reader = r
	if bytes.Equal(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	b, err := io.ReadAll(io.LimitReader(src, maxFileBytes+1))
	if err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("truncated gzip stream: %w", err)
		}
		return nil, err
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxFileBytes)
	}
	return b, nil
}
