package data

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadIDXRawAndGzip(t *testing.T) {
	m := tinyMNIST{n: 13, rows: 4, cols: 5}
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		m.write(t, dir, "train", gz)
		m.write(t, dir, "t10k", !gz)
		for _, split := range []string{"train", "test"} {
			ds, err := ReadFashionMNIST(dir, split, WithAnyCount())
			if err != nil {
				t.Fatalf("gz=%v %s: %v", gz, split, err)
			}
			if ds.Len() != 13 || ds.H != 4 || ds.W != 5 || ds.C != 1 || ds.NumClasses() != 10 {
				t.Fatalf("got N=%d %dx%dx%d classes %d", ds.Len(), ds.H, ds.W, ds.C, ds.NumClasses())
			}
			if !bytes.Equal(ds.Images, m.pix()) {
				t.Fatal("pixels differ from what was written")
			}
			for i, l := range ds.Labels {
				if l != int32(i%10) {
					t.Fatalf("label %d = %d", i, l)
				}
			}
			if ds.Classes[9] != "Ankle boot" || ds.Name != FashionMNIST || ds.Split != split {
				t.Fatalf("classes/name: %v %s %s", ds.Classes, ds.Name, ds.Split)
			}
			// Image(i) is image i's bytes.
			if !bytes.Equal(ds.Image(3), m.pix()[3*20:4*20]) {
				t.Fatal("Image(3) wrong")
			}
		}
	}
}

func TestReadIDXCanonicalCount(t *testing.T) {
	dir := t.TempDir()
	tinyMNIST{n: 3, rows: 2, cols: 2}.write(t, dir, "train", true)
	_, err := ReadMNIST(dir, "train")
	if err == nil || !strings.Contains(err.Error(), "3 images, want 60000") {
		t.Fatalf("want a count error, got %v", err)
	}
}

func TestReadIDXErrors(t *testing.T) {
	m := tinyMNIST{n: 4, rows: 3, cols: 3}
	good := idxImagesBytes(m.n, m.rows, m.cols, m.pix())
	goodLbl := idxLabelsBytes(m.labels())
	cases := []struct {
		name      string
		img, lbl  []byte
		wantInErr string
	}{
		{"wrong magic", append([]byte{0, 0, 8, 1}, good[4:]...), goodLbl, "magic number 0x00000801, want 0x00000803"},
		{"labels as images", goodLbl, goodLbl, "magic number"},
		{"truncated images", good[:len(good)-5], goodLbl, "truncated: 31 data bytes"},
		{"trailing bytes", append(append([]byte{}, good...), 1, 2), goodLbl, "trailing bytes"},
		{"short header", good[:10], goodLbl, "too short"},
		{"label out of range", good, idxLabelsBytes([]byte{1, 2, 10, 3}), "record 2: label 10 > 9"},
		{"count mismatch", good, idxLabelsBytes([]byte{1, 2, 3}), "3 labels for the 4 images"},
		{"truncated gzip", gzipBytes(t, good)[:40], goodLbl, "truncated gzip stream"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			imgPath := filepath.Join(dir, "train-images-idx3-ubyte")
			writeFile(t, imgPath, c.img)
			writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"), c.lbl)
			_, err := ReadFashionMNIST(dir, "train", WithAnyCount())
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.wantInErr) || !strings.Contains(msg, dir) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want a one-line error naming the file and %q", msg, c.wantInErr)
			}
		})
	}
}

func TestReadIDXMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadMNIST(dir, "train")
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "train-images-idx3-ubyte") {
		t.Fatalf("want a not-found error naming the file, got %v", err)
	}
	_, err = Open("mnist", dir, "train")
	if err == nil || !strings.Contains(err.Error(), "ifa data fetch mnist") {
		t.Fatalf("Open: want a hint to fetch, got %v", err)
	}
	if _, err := ReadMNIST(dir, "validation"); err == nil || !strings.Contains(err.Error(), "unknown split") {
		t.Fatalf("bad split: %v", err)
	}
}

func TestOpenLooksInDirAndSubdir(t *testing.T) {
	root := t.TempDir()
	m := tinyMNIST{n: 5, rows: 2, cols: 3}
	m.write(t, filepath.Join(root, "mnist"), "t10k", true)
	ds, err := Open("MNIST", root, "test", WithAnyCount())
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 5 || ds.Name != MNIST {
		t.Fatalf("got %d images of %s", ds.Len(), ds.Name)
	}
	if _, err := Open("imagenet", root, "test"); err == nil || !strings.Contains(err.Error(), "unknown dataset") {
		t.Fatalf("unknown name: %v", err)
	}
}

func FuzzIDX(f *testing.F) {
	m := tinyMNIST{n: 2, rows: 2, cols: 2}
	f.Add(idxImagesBytes(m.n, m.rows, m.cols, m.pix()))
	f.Add(idxLabelsBytes([]byte{1, 2, 3}))
	f.Add([]byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add(gzipBytes(f, idxImagesBytes(1, 1, 1, []byte{9})))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, magic := range []uint32{idxImageMagic, idxLabelMagic} {
			dims, payload, err := parseIDX(b, magic)
			if err != nil {
				continue
			}
			size := 1
			for _, d := range dims {
				size *= d
			}
			if len(payload) != size || len(dims) != int(magic&0xff) {
				t.Fatalf("dims %v, payload %d", dims, len(payload))
			}
		}
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte"), b)
		writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"), idxLabelsBytes([]byte{0, 1}))
		ds, err := ReadFashionMNIST(dir, "train", WithAnyCount())
		if err == nil {
			if verr := ds.Validate(); verr != nil {
				t.Fatal(verr)
			}
		}
	})
}

// The real Fashion-MNIST, when installed: counts, shape and the hard-coded normalisation constants.
func TestRealFashionMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the whole of Fashion-MNIST (about 2 s)")
	}
	dir := "/usr/share/datasets/fashion-mnist"
	if _, err := os.Stat(dir); err != nil {
		t.Skip("Fashion-MNIST not installed at " + dir)
	}
	train, err := Open(FashionMNIST, "", "train")
	if err != nil {
		t.Fatal(err)
	}
	test, err := Open(FashionMNIST, "", "test")
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 60000 || test.Len() != 10000 || train.H != 28 || train.W != 28 || train.C != 1 || train.NumClasses() != 10 {
		t.Fatalf("train %d test %d %dx%dx%d classes %d", train.Len(), test.Len(), train.H, train.W, train.C, train.NumClasses())
	}
	for k, n := range train.ClassCounts() {
		if n != 6000 {
			t.Fatalf("class %d: %d training images, want 6000", k, n)
		}
	}
	mean, std := train.ChannelStats()
	if math.Abs(mean[0]-FashionMNISTMean) > 1e-12 || math.Abs(std[0]-FashionMNISTStd) > 1e-12 {
		t.Fatalf("stats %v %v, constants %v %v", mean, std, FashionMNISTMean, FashionMNISTStd)
	}
}

func TestChannelStatsAgainstNaive(t *testing.T) {
	ds := &Dataset{H: 2, W: 3, C: 3, Classes: []string{"a"}, Labels: []int32{0, 0}}
	for i := range 2 * 2 * 3 * 3 {
		ds.Images = append(ds.Images, byte(i*37%256))
	}
	mean, std := ds.ChannelStats()
	for c := range 3 {
		var s, s2, n float64
		for i := c; i < len(ds.Images); i += 3 {
			x := float64(ds.Images[i]) / 255
			s += x
			n++
		}
		m := s / n
		for i := c; i < len(ds.Images); i += 3 {
			d := float64(ds.Images[i])/255 - m
			s2 += d * d
		}
		if math.Abs(mean[c]-m) > 1e-12 || math.Abs(std[c]-math.Sqrt(s2/n)) > 1e-12 {
			t.Fatalf("channel %d: %v %v, want %v %v", c, mean[c], std[c], m, math.Sqrt(s2/n))
		}
	}
}
