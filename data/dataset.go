package data

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Dataset is a labelled image set held in memory as uint8 pixels.
type Dataset struct {
	// Name is the dataset's name ("fashion-mnist", "cifar10", ...) or, for an image folder, its path.
	Name string
	// Split is "train" or "test" (or the sub-folder name of an image folder).
	Split string
	// Source is the file or folder the images were read from.
	Source string
	// Images: uint8 [N, H, W, C], row-major and contiguous (channels-last).
	Images []uint8
	// Labels: int32 [N], each in [0, len(Classes)).
	Labels []int32
	// Classes holds the class names; the label of class Classes[k] is k.
	Classes []string
	// H, W, C are the image height, width and number of channels.
	H, W, C int
}

// Len returns N, the number of images.
func (d *Dataset) Len() int { return len(d.Labels) }

// NumClasses returns the number of classes.
func (d *Dataset) NumClasses() int { return len(d.Classes) }

// ImageSize returns H·W·C, the number of bytes of one image.
func (d *Dataset) ImageSize() int { return d.H * d.W * d.C }

// Image returns image i: uint8 [H, W, C]. It aliases the dataset's memory.
func (d *Dataset) Image(i int) []uint8 {
	n := d.ImageSize()
	return d.Images[i*n : (i+1)*n : (i+1)*n]
}

// Validate checks that the sizes agree and every label is in range.
func (d *Dataset) Validate() error {
	if d.H <= 0 || d.W <= 0 || (d.C != 1 && d.C != 3) {
		return fmt.Errorf("data: %s %s: bad image shape %dx%dx%d (want H, W > 0 and 1 or 3 channels)", d.Name, d.Split, d.H, d.W, d.C)
	}
	if len(d.Images) != len(d.Labels)*d.ImageSize() {
		return fmt.Errorf("data: %s %s: %d image bytes for %d labels of %dx%dx%d images", d.Name, d.Split, len(d.Images), len(d.Labels), d.H, d.W, d.C)
	}
	if len(d.Classes) == 0 {
		return fmt.Errorf("data: %s %s: no class names", d.Name, d.Split)
	}
	for i, l := range d.Labels {
		if l < 0 || int(l) >= len(d.Classes) {
			return fmt.Errorf("data: %s %s: image %d: label %d out of range [0, %d)", d.Name, d.Split, i, l, len(d.Classes))
		}
	}
	return nil
}

// ClassCounts returns the number of images of each class.
func (d *Dataset) ClassCounts() []int {
	counts := make([]int, len(d.Classes))
	for _, l := range d.Labels {
		if l >= 0 && int(l) < len(counts) {
			counts[l]++
		}
	}
	return counts
}

// ChannelStats returns the per-channel mean and (population) standard deviation of the pixel values
// scaled to [0, 1], over every image: mean, std: [C]. It is exact (a per-channel histogram).
func (d *Dataset) ChannelStats() (mean, std []float64) {
	hist := make([][256]int64, d.C)
	for i, p := range d.Images {
		hist[i%d.C][p]++
	}
	mean = make([]float64, d.C)
	std = make([]float64, d.C)
	for c := range d.C {
		var n, s, s2 float64
		for v, k := range hist[c] {
			x := float64(v) / 255
			n += float64(k)
			s += float64(k) * x
			s2 += float64(k) * x * x
		}
		if n == 0 {
			continue
		}
		mean[c] = s / n
		std[c] = math.Sqrt(math.Max(0, s2/n-mean[c]*mean[c]))
	}
	return mean, std
}

// Options tune how a dataset is read. Build them with the Option functions.
type Options struct {
	// Coarse selects CIFAR-100's 20 coarse labels instead of the 100 fine ones.
	Coarse bool
	// Height, Width: the size image-folder images are resized to (default 32×32).
	Height, Width int
	// Channels: 1 or 3, the channels image-folder images are converted to (default 3).
	Channels int
	// AnyCount skips the check of the canonical number of images (60000/10000 for MNIST, ...): for
	// subsets and test files. The files must still be consistent.
	AnyCount bool
}

// Option sets one of the Options.
type Option func(*Options)

// WithCoarseLabels selects CIFAR-100's 20 coarse (super-class) labels.
func WithCoarseLabels() Option { return func(o *Options) { o.Coarse = true } }

// WithImageSize sets the size image-folder images are resized to.
func WithImageSize(height, width int) Option {
	return func(o *Options) { o.Height, o.Width = height, width }
}

// WithChannels sets the number of channels (1: grayscale, 3: RGB) image-folder images are converted to.
func WithChannels(c int) Option { return func(o *Options) { o.Channels = c } }

// WithAnyCount accepts files with any number of images instead of the canonical counts.
func WithAnyCount() Option { return func(o *Options) { o.AnyCount = true } }

func buildOptions(opts []Option) Options {
	o := Options{Height: 32, Width: 32, Channels: 3}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Known dataset names, as accepted by Open and Fetch.
const (
	FashionMNIST = "fashion-mnist"
	MNIST        = "mnist"
	CIFAR10      = "cifar10"
	CIFAR100     = "cifar100"
)

// Names lists the known dataset names.
func Names() []string { return []string{FashionMNIST, MNIST, CIFAR10, CIFAR100} }

// CanonicalName maps a dataset name or one of its aliases (fashion_mnist, fmnist, cifar-10, ...) to
// its canonical name; it returns "" for a name it does not know (e.g. a path).
func CanonicalName(name string) string {
	n := strings.ToLower(strings.NewReplacer("_", "-", " ", "-").Replace(name))
	switch n {
	case "fashion-mnist", "fashionmnist", "fmnist":
		return FashionMNIST
	case "mnist":
		return MNIST
	case "cifar10", "cifar-10":
		return CIFAR10
	case "cifar100", "cifar-100":
		return CIFAR100
	}
	return ""
}

// systemDirs lists where distribution packages put a dataset.
func systemDirs(name string) []string {
	switch name {
	case FashionMNIST:
		return []string{"/usr/share/datasets/fashion-mnist"}
	case MNIST:
		return []string{"/usr/share/datasets/mnist"}
	}
	return nil
}

// DefaultRoot is the folder `ifa data fetch` downloads to when no folder is given:
// <user cache dir>/ifa/datasets (e.g. ~/.cache/ifa/datasets).
func DefaultRoot() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(".", "datasets")
	}
	return filepath.Join(dir, "ifa", "datasets")
}

// SearchDirs lists the folders Open looks in for a known dataset, in order: with dir given, dir and
// dir/<name>; without, DefaultRoot()/<name> and the system folders (Debian's dataset-fashion-mnist
// installs /usr/share/datasets/fashion-mnist).
func SearchDirs(name, dir string) []string {
	if dir != "" {
		return []string{dir, filepath.Join(dir, name)}
	}
	return append([]string{filepath.Join(DefaultRoot(), name)}, systemDirs(name)...)
}

// Open reads split ("train" or "test") of a dataset: name is fashion-mnist, mnist, cifar10, cifar100
// (or an alias, see CanonicalName), or the path of an image folder (root/<class>/*.png|jpg, or
// root/<split>/<class>/...). dir is where to look for a named dataset ("" for the default places, see
// SearchDirs); it is ignored for a path.
func Open(name, dir, split string, opts ...Option) (*Dataset, error) {
	canon := CanonicalName(name)
	if canon == "" {
		if st, err := os.Stat(name); err == nil && st.IsDir() {
			return ReadImageFolder(name, split, opts...)
		}
		return nil, fmt.Errorf("data: unknown dataset %q: want one of %s, or the path of an image folder", name, strings.Join(Names(), ", "))
	}
	if split != "train" && split != "test" {
		return nil, fmt.Errorf("data: %s: unknown split %q: want train or test", canon, split)
	}
	var errs []string
	for _, d := range SearchDirs(canon, dir) {
		if _, err := os.Stat(d); err != nil {
			errs = append(errs, d+": not found")
			continue
		}
		var ds *Dataset
		var err error
		switch canon {
		case FashionMNIST:
			ds, err = ReadFashionMNIST(d, split, opts...)
		case MNIST:
			ds, err = ReadMNIST(d, split, opts...)
		case CIFAR10:
			ds, err = ReadCIFAR10(d, split, opts...)
		case CIFAR100:
			ds, err = ReadCIFAR100(d, split, opts...)
		}
		if err == nil {
			return ds, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err // the files are there but bad: say so, do not look further.
		}
		errs = append(errs, err.Error())
	}
	return nil, fmt.Errorf("data: %s %s not found (run `ifa data fetch %s`): %s", canon, split, canon, strings.Join(errs, "; "))
}

// notFound is an error that names what was looked for; errors.Is(err, fs.ErrNotExist) holds.
type notFound struct{ msg string }

func (e *notFound) Error() string        { return e.msg }
func (e *notFound) Is(target error) bool { return target == fs.ErrNotExist }

// firstExisting returns the first of paths that is a regular file.
func firstExisting(paths ...string) (string, bool) {
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, true
		}
	}
	return "", false
}
