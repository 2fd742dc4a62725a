package eval

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// fashionMNISTDir is where Debian's dataset-fashion-mnist package installs the IDX files.
const fashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// readIDX reads a gzipped IDX file of unsigned bytes, returning its dimensions and data.
func readIDX(path string) ([]int, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	var magic [4]byte
	if _, err := io.ReadFull(gz, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 {
		return nil, nil, fmt.Errorf("%s: not an unsigned-byte IDX file (magic % x)", path, magic)
	}
	dims := make([]int, magic[3])
	size := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(gz, binary.BigEndian, &d); err != nil {
			return nil, nil, fmt.Errorf("%s: dimension %d: %w", path, i, err)
		}
		dims[i] = int(d)
		size *= int(d)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(gz, buf); err != nil {
		return nil, nil, fmt.Errorf("%s: data: %w", path, err)
	}
	return dims, buf, nil
}

// loadFashionMNIST returns the raw pixels (scaled to [0, 1]) of a split as a FeatureSet [N, 784].
func loadFashionMNIST(t *testing.T, split string) FeatureSet {
	t.Helper()
	dims, pix, err := readIDX(filepath.Join(fashionMNISTDir, split+"-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	ldims, lab, err := readIDX(filepath.Join(fashionMNISTDir, split+"-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	n, d := dims[0], dims[1]*dims[2]
	if ldims[0] != n {
		t.Fatalf("%s: %d images, %d labels", split, n, ldims[0])
	}
	f := FeatureSet{X: make([]float32, n*d), Labels: make([]int32, n), N: n, D: d}
	for i, p := range pix {
		f.X[i] = float32(p) / 255
	}
	for i, l := range lab {
		f.Labels[i] = int32(l)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	return f
}

func skipWithoutFashionMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("Fashion-MNIST reference points are slow: skipped with -short")
	}
	if _, err := os.Stat(filepath.Join(fashionMNISTDir, "t10k-labels-idx1-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST not installed at %s", fashionMNISTDir)
	}
}

// TestFashionMNISTKNNReference: weighted cosine kNN on raw pixels scores 78.9% (k=200, T=0.1) and
// 84.6% (k=20, T=0.07) top-1 on the test set with the train set as the bank.
func TestFashionMNISTKNNReference(t *testing.T) {
	skipWithoutFashionMNIST(t)
	train, test := loadFashionMNIST(t, "train"), loadFashionMNIST(t, "t10k")
	start := time.Now()
	res, err := KNN(testutil.Backend(), train, test, KNNOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kNN 60000 x 10000 x 784 took %v", time.Since(start))
	for i, want := range []float64{0.789, 0.846} {
		t.Logf("%s: %v", res[i].Setting, res[i].Accuracy)
		if math.Abs(res[i].Top1-want) > 0.005 {
			t.Errorf("%s: top-1 %.4f, want %.3f ± 0.005", res[i].Setting, res[i].Top1, want)
		}
	}
}

// TestFashionMNISTProbeReference: a linear classifier on raw pixels reaches about 84% (the
// Fashion-MNIST benchmark's logistic regression). The probe settings are pinned (30 epochs, lr
// 0.05): on raw pixels the default 90-epoch probe fits the training set further and scores 83.5%.
func TestFashionMNISTProbeReference(t *testing.T) {
	skipWithoutFashionMNIST(t)
	train, test := loadFashionMNIST(t, "train"), loadFashionMNIST(t, "t10k")
	start := time.Now()
	res, err := LinearProbe(testutil.Backend(), train, test, ProbeOptions{Epochs: 30, LR: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("linear probe (%d epochs) took %v: train %v, test %v", len(res.EpochLoss), time.Since(start), res.Train, res.Test)
	t.Logf("epoch losses %.4f", res.EpochLoss)
	if math.Abs(res.Test.Top1-0.842) > 0.006 {
		t.Errorf("test top-1 %.4f, want 0.842 ± 0.006", res.Test.Top1)
	}
}
