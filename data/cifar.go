package data

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// cifarSpec describes one of the CIFAR binary versions.
type cifarSpec struct {
	name       string
	archive    string // the published archive's file name
	folder     string // the folder the archive extracts to
	labelBytes int    // bytes before the pixels of a record: 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
	labelAt    int    // which of them is the label read
	classes    int
	meta       string // the class-name file
	train      []string
	test       []string
	trainCount int
	testCount  int
}

const cifarPixels = 32 * 32 * 3

func cifar10Spec() cifarSpec {
	return cifarSpec{
		name: CIFAR10, archive: "cifar-10-binary.tar.gz", folder: "cifar-10-batches-bin",
		labelBytes: 1, labelAt: 0, classes: 10, meta: "batches.meta.txt",
		train:      []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
		test:       []string{"test_batch.bin"},
		trainCount: 50000, testCount: 10000,
	}
}

func cifar100Spec(coarse bool) cifarSpec {
	s := cifarSpec{
		name: CIFAR100, archive: "cifar-100-binary.tar.gz", folder: "cifar-100-binary",
		labelBytes: 2, labelAt: 1, classes: 100, meta: "fine_label_names.txt",
		train: []string{"train.bin"}, test: []string{"test.bin"},
		trainCount: 50000, testCount: 10000,
	}
	if coarse {
		s.labelAt, s.classes, s.meta = 0, 20, "coarse_label_names.txt"
	}
	return s
}

// ReadCIFAR10 reads split ("train" or "test") of the CIFAR-10 binary version. p is the archive
// (cifar-10-binary.tar.gz, read without extracting it), the extracted cifar-10-batches-bin folder, or a
// folder holding either (the extracted folder is preferred).
func ReadCIFAR10(p, split string, opts ...Option) (*Dataset, error) {
	return readCIFAR(cifar10Spec(), p, split, buildOptions(opts))
}

// ReadCIFAR100 reads split ("train" or "test") of the CIFAR-100 binary version, with the 100 fine
// labels, or the 20 coarse ones under WithCoarseLabels. p is the archive (cifar-100-binary.tar.gz), the
// extracted cifar-100-binary folder, or a folder holding either.
func ReadCIFAR100(p, split string, opts ...Option) (*Dataset, error) {
	o := buildOptions(opts)
	return readCIFAR(cifar100Spec(o.Coarse), p, split, o)
}

func readCIFAR(s cifarSpec, p, split string, o Options) (*Dataset, error) {
	var files []string
	var want int
	switch split {
	case "train":
		files, want = s.train, s.trainCount
	case "test":
		files, want = s.test, s.testCount
	default:
		return nil, fmt.Errorf("data: %s: unknown split %q: want train or test", s.name, split)
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, &notFound{fmt.Sprintf("data: %s: %s not found", s.name, p)}
	}
	var contents map[string][]byte // file base name -> bytes
	var where func(f string) string
	source := p
	switch {
	case st.Mode().IsRegular():
		contents, err = readTarMembers(p, append([]string{s.meta}, files...))
		where = func(f string) string { return p + ":" + path.Join(s.folder, f) }
	default:
		dir := ""
		if _, ok := firstExisting(filepath.Join(p, files[0])); ok {
			dir = p
		} else if _, ok := firstExisting(filepath.Join(p, s.folder, files[0])); ok {
			dir = filepath.Join(p, s.folder)
		}
		if dir == "" {
			arch, ok := firstExisting(filepath.Join(p, s.archive))
			if !ok {
				return nil, &notFound{fmt.Sprintf("data: %s: none of %s, %s, %s found",
					s.name, filepath.Join(p, files[0]), filepath.Join(p, s.folder, files[0]), filepath.Join(p, s.archive))}
			}
			source = arch
			contents, err = readTarMembers(arch, append([]string{s.meta}, files...))
			where = func(f string) string { return arch + ":" + path.Join(s.folder, f) }
			break
		}
		contents = map[string][]byte{}
		source = dir
		where = func(f string) string { return filepath.Join(dir, f) }
		for _, f := range append([]string{s.meta}, files...) {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				return nil, fmt.Errorf("data: %s: %w", s.name, err)
			}
			contents[f] = b
		}
	}
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", s.name, err)
	}
	classes, err := parseClassNames(contents[s.meta], s.classes)
	if err != nil {
		return nil, fmt.Errorf("data: %s: file %s: %w", s.name, where(s.meta), err)
	}
	ds := &Dataset{Name: s.name, Split: split, Source: source, Classes: classes, H: 32, W: 32, C: 3}
	for _, f := range files {
		if err := parseCIFARRecords(contents[f], s.labelBytes, s.labelAt, s.classes, ds); err != nil {
			return nil, fmt.Errorf("data: %s: file %s: %w", s.name, where(f), err)
		}
	}
	if !o.AnyCount && ds.Len() != want {
		return nil, fmt.Errorf("data: %s %s: %d images in %s, want %d", s.name, split, ds.Len(), where(files[0]), want)
	}
	return ds, nil
}

// parseCIFARRecords appends the records of one CIFAR binary file to ds. A record is labelBytes label
// bytes (the label read is byte labelAt) then 3072 pixel bytes: the 1024 red values of the 32×32 image
// in row-major order, then green, then blue. ds receives them channels-last.
func parseCIFARRecords(b []byte, labelBytes, labelAt, numClasses int, ds *Dataset) error {
	rec := labelBytes + cifarPixels
	if len(b) == 0 {
		return errors.New("empty file, want records of " + fmt.Sprint(rec) + " bytes")
	}
	if len(b)%rec != 0 {
		return fmt.Errorf("size %d is not a multiple of the %d-byte record (truncated?)", len(b), rec)
	}
	n := len(b) / rec
	base := len(ds.Labels)
	ds.Labels = append(ds.Labels, make([]int32, n)...)
	ds.Images = append(ds.Images, make([]uint8, n*cifarPixels)...)
	const plane = 32 * 32
	for i := range n {
		r := b[i*rec : (i+1)*rec]
		l := r[labelAt]
		if int(l) >= numClasses {
			return fmt.Errorf("record %d: label %d > %d", i, l, numClasses-1)
		}
		ds.Labels[base+i] = int32(l)
		px := r[labelBytes:]
		dst := ds.Images[(base+i)*cifarPixels : (base+i+1)*cifarPixels]
		for j := range plane {
			dst[3*j] = px[j]
			dst[3*j+1] = px[plane+j]
			dst[3*j+2] = px[2*plane+j]
		}
	}
	return nil
}

// parseClassNames reads one class name per line (blank lines ignored) and checks there are n.
func parseClassNames(b []byte, n int) ([]string, error) {
	var names []string
	for line := range strings.Lines(string(b)) {
		if s := strings.TrimSpace(line); s != "" {
			names = append(names, s)
		}
	}
	if len(names) != n {
		return nil, fmt.Errorf("%d class names, want %d", len(names), n)
	}
	return names, nil
}

// readTarMembers reads the regular members of a .tar.gz (or plain .tar) archive whose base names are
// in want, and fails unless all were found.
func readTarMembers(archive string, want []string) (map[string][]byte, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("file %s: gzip: %w", archive, err)
		}
		defer zr.Close()
		r = zr
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for len(out) < len(wanted) {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				err = errors.New("unexpected EOF")
			}
			return nil, fmt.Errorf("file %s: truncated or corrupt archive: %w", archive, err)
		}
		base := path.Base(h.Name)
		if h.Typeflag != tar.TypeReg || !wanted[base] {
			continue
		}
		if h.Size > maxFileBytes {
			return nil, fmt.Errorf("file %s: member %s: %d bytes, more than %d", archive, h.Name, h.Size, int64(maxFileBytes))
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				err = errors.New("unexpected EOF")
			}
			return nil, fmt.Errorf("file %s: member %s: truncated or corrupt archive: %w", archive, h.Name, err)
		}
		out[base] = b
	}
	for _, w := range want {
		if _, ok := out[w]; !ok {
			return nil, fmt.Errorf("file %s: no member %s in the archive", archive, w)
		}
	}
	return out, nil
}
