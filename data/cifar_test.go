package data

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkCIFARImage checks image i of ds against the generator f, channels-last.
func checkCIFARImage(t *testing.T, ds *Dataset, i int, f func(y, x, c int) byte) {
	t.Helper()
	img := ds.Image(i)
	for y := range 32 {
		for x := range 32 {
			for c := range 3 {
				if got, want := img[(y*32+x)*3+c], f(y, x, c); got != want {
					t.Fatalf("image %d (%d,%d,%d) = %d, want %d", i, y, x, c, got, want)
				}
			}
		}
	}
}

func TestReadCIFAR10ArchiveAndFolder(t *testing.T) {
	const per = 3
	files, order := tinyCIFAR10(per)
	root := t.TempDir()
	archive := filepath.Join(root, "dl", "cifar-10-binary.tar.gz")
	writeFile(t, archive, tarGz(t, files, order))
	writeTree(t, filepath.Join(root, "ex"), files)
	sources := map[string]string{
		"archive file":        archive,
		"folder with archive": filepath.Dir(archive),
		"extracted parent":    filepath.Join(root, "ex"),
		"extracted folder":    filepath.Join(root, "ex", "cifar-10-batches-bin"),
	}
	for name, p := range sources {
		t.Run(name, func(t *testing.T) {
			train, err := ReadCIFAR10(p, "train", WithAnyCount())
			if err != nil {
				t.Fatal(err)
			}
			if train.Len() != 5*per || train.H != 32 || train.W != 32 || train.C != 3 {
				t.Fatalf("train: %d images %dx%dx%d", train.Len(), train.H, train.W, train.C)
			}
			if train.Classes[0] != "airplane" || train.Classes[9] != "truck" || len(train.Classes) != 10 {
				t.Fatalf("classes %v", train.Classes)
			}
			for k := range train.Len() {
				if train.Labels[k] != int32(k%10) {
					t.Fatalf("train label %d = %d", k, train.Labels[k])
				}
				checkCIFARImage(t, train, k, cifarPixel(k))
			}
			test, err := ReadCIFAR10(p, "test", WithAnyCount())
			if err != nil {
				t.Fatal(err)
			}
			if test.Len() != per || test.Labels[1] != 4 {
				t.Fatalf("test: %d images, label[1] %d", test.Len(), test.Labels[1])
			}
			checkCIFARImage(t, test, 2, cifarPixel(1002))
			if _, err := ReadCIFAR10(p, "train"); err == nil || !strings.Contains(err.Error(), "15 images") || !strings.Contains(err.Error(), "want 50000") {
				t.Fatalf("canonical count: %v", err)
			}
		})
	}
}

func TestReadCIFAR100FineAndCoarse(t *testing.T) {
	files, order := tinyCIFAR100(7)
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "cifar-100-binary.tar.gz"), tarGz(t, files, order))
	ex := filepath.Join(root, "ex")
	writeTree(t, ex, files)
	for _, p := range []string{root, ex} {
		fine, err := ReadCIFAR100(p, "train", WithAnyCount())
		if err != nil {
			t.Fatal(err)
		}
		coarse, err := ReadCIFAR100(p, "test", WithAnyCount(), WithCoarseLabels())
		if err != nil {
			t.Fatal(err)
		}
		if fine.NumClasses() != 100 || coarse.NumClasses() != 20 || fine.Classes[27] != "fine_bb" || coarse.Classes[3] != "coarse_d" {
			t.Fatalf("classes: %d %d %q %q", fine.NumClasses(), coarse.NumClasses(), fine.Classes[27], coarse.Classes[3])
		}
		for k := range 7 {
			if fine.Labels[k] != int32(7*k%100) || coarse.Labels[k] != int32((k+500)%20) {
				t.Fatalf("image %d: fine %d coarse %d", k, fine.Labels[k], coarse.Labels[k])
			}
			checkCIFARImage(t, fine, k, cifarPixel(k))
			checkCIFARImage(t, coarse, k, cifarPixel(k+500))
		}
	}
	// Open finds <dir>/cifar100.
	writeTree(t, filepath.Join(root, "o", "cifar100"), files)
	ds, err := Open("cifar-100", filepath.Join(root, "o"), "test", WithAnyCount())
	if err != nil || ds.Len() != 7 {
		t.Fatalf("Open: %v", err)
	}
}

func TestReadCIFARErrors(t *testing.T) {
	files, order := tinyCIFAR10(2)
	full := tarGz(t, files, order)
	t.Run("truncated archive", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "cifar-10-binary.tar.gz")
		writeFile(t, p, full[:len(full)/2])
		_, err := ReadCIFAR10(p, "train", WithAnyCount())
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "truncated or corrupt archive") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("missing member", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "cifar-10-binary.tar.gz")
		o := []string{}
		for _, n := range order {
			if !strings.HasSuffix(n, "data_batch_4.bin") {
				o = append(o, n)
			}
		}
		writeFile(t, p, tarGz(t, files, o))
		_, err := ReadCIFAR10(p, "train", WithAnyCount())
		if err == nil || !strings.Contains(err.Error(), "no member data_batch_4.bin") {
			t.Fatalf("got %v", err)
		}
	})
	bad := func(name string, mutate func(map[string][]byte), want string) {
		t.Run(name, func(t *testing.T) {
			fs2 := map[string][]byte{}
			for k, v := range files {
				fs2[k] = append([]byte{}, v...)
			}
			mutate(fs2)
			dir := t.TempDir()
			writeTree(t, dir, fs2)
			_, err := ReadCIFAR10(dir, "train", WithAnyCount())
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want %q", err, want)
			}
		})
	}
	bad("label out of range", func(m map[string][]byte) { m["cifar-10-batches-bin/data_batch_3.bin"][3073] = 255 },
		"data_batch_3.bin: record 1: label 255 > 9")
	bad("truncated batch", func(m map[string][]byte) {
		b := m["cifar-10-batches-bin/data_batch_2.bin"]
		m["cifar-10-batches-bin/data_batch_2.bin"] = b[:len(b)-1]
	}, "data_batch_2.bin: size 6145 is not a multiple of the 3073-byte record")
	bad("bad meta", func(m map[string][]byte) { m["cifar-10-batches-bin/batches.meta.txt"] = []byte("a\nb\n") },
		"batches.meta.txt: 2 class names, want 10")
	t.Run("missing", func(t *testing.T) {
		_, err := ReadCIFAR10(t.TempDir(), "train")
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "cifar-10-binary.tar.gz") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("missing batch in folder", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, files)
		os.Remove(filepath.Join(dir, "cifar-10-batches-bin", "data_batch_5.bin"))
		_, err := ReadCIFAR10(dir, "train", WithAnyCount())
		if err == nil || !strings.Contains(err.Error(), "data_batch_5.bin") {
			t.Fatalf("got %v", err)
		}
	})
}

func FuzzCIFAR(f *testing.F) {
	f.Add(cifarRecord([]byte{3}, cifarPixel(1)), 1)
	f.Add(cifarRecord([]byte{3, 99}, cifarPixel(2)), 2)
	f.Add([]byte{200}, 1)
	f.Fuzz(func(t *testing.T, b []byte, labelBytes int) {
		labelBytes = 1 + labelBytes&1 // 1 or 2
		ds := &Dataset{H: 32, W: 32, C: 3, Classes: make([]string, 10)}
		err := parseCIFARRecords(b, labelBytes, labelBytes-1, 10, ds)
		if err != nil {
			return
		}
		if len(b)%(labelBytes+cifarPixels) != 0 || ds.Len() != len(b)/(labelBytes+cifarPixels) {
			t.Fatalf("%d bytes accepted as %d records", len(b), ds.Len())
		}
		if err := ds.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzCIFARArchive(f *testing.F) {
	files, order := tinyCIFAR10(1)
	f.Add(tarGz(f, files, order))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "cifar-10-binary.tar.gz")
		writeFile(t, p, b)
		ds, err := ReadCIFAR10(p, "test", WithAnyCount())
		if err == nil {
			if err := ds.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
