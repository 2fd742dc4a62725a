package data

import (
	"fmt"
	"image"
	_ "image/jpeg" // JPEG decoding for image folders.
	_ "image/png"  // PNG decoding for image folders.
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// imageExts are the file extensions ReadImageFolder reads (case-insensitive).
func imageExts() []string { return []string{".png", ".jpg", ".jpeg"} }

// ReadImageFolder reads a folder of class sub-folders of images: root/<class>/*.png|jpg|jpeg, or, when
// root/<split> exists, root/<split>/<class>/*. Without a root/<split> folder, root itself is the
// "train" split and other splits are an error. Classes are the sub-folder names in sorted order.
// Images are converted to WithChannels' channels (3 by default; 1 is luma 0.299R+0.587G+0.114B) and
// resized to WithImageSize's size (32×32 by default; bilinear, antialiased when shrinking).
//
// The decoded split is cached in root/.ifa-cache/ (see folder_cache.go) and memory-mapped on the
// next read; a change to the split's files (added, removed, resized or touched) rebuilds it. The
// mapped images are read-only and stay mapped for the life of the process.
func ReadImageFolder(root, split string, opts ...Option) (*Dataset, error) {
	o := buildOptions(opts)
	if o.Height <= 0 || o.Width <= 0 || (o.Channels != 1 && o.Channels != 3) {
		return nil, fmt.Errorf("data: folder %s: bad size %dx%dx%d: want a positive size and 1 or 3 channels", root, o.Height, o.Width, o.Channels)
	}
	if split == "" {
		split = "train"
	}
	dir := filepath.Join(root, split)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if split != "train" {
			return nil, &notFound{fmt.Sprintf("data: folder %s: no %s split (folder %s not found)", root, split, dir)}
		}
		dir = root
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data: folder %s: %w", dir, err)
	}
	type item struct {
		path  string
		label int32
	}
	var classes []string
	var items []item
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("data: folder %s: %w", dir, err)
		}
		label := int32(len(classes))
		classes = append(classes, e.Name())
		for _, f := range files {
			if f.Type().IsRegular() && slices.Contains(imageExts(), strings.ToLower(filepath.Ext(f.Name()))) {
				items = append(items, item{filepath.Join(dir, e.Name(), f.Name()), label})
			}
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("data: folder %s: no images: want class folders of *.png, *.jpg or *.jpeg files (%d class folders found)", dir, len(classes))
	}
	paths := make([]string, len(items))
	for i, it := range items {
		paths[i] = it.path
	}
	fp, err := folderFingerprint(dir, paths, o.Height, o.Width, o.Channels)
	if err != nil {
		return nil, err
	}
	head := cacheHeader{Fingerprint: fp, N: len(items), H: o.Height, W: o.Width, C: o.Channels, Classes: classes}
	cache := cachePath(root, split, o.Height, o.Width, o.Channels)
	if labels, images, ok, err := readCache(cache, head); err != nil {
		return nil, err
	} else if ok {
		return &Dataset{Name: root, Split: split, Source: dir, Classes: classes, H: o.Height, W: o.Width, C: o.Channels,
			Images: images, Labels: labels}, nil
	}
	ds := &Dataset{Name: root, Split: split, Source: dir, Classes: classes, H: o.Height, W: o.Width, C: o.Channels,
		Images: make([]uint8, len(items)*o.Height*o.Width*o.Channels), Labels: make([]int32, len(items))}
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(items))
	for wk := range workers {
		wg.Go(func() {
			var rs resizer
			for i := wk; i < len(items); i += workers {
				ds.Labels[i] = items[i].label
				errs[i] = loadImage(items[i].path, ds.Image(i), o.Height, o.Width, o.Channels, &rs)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	// A folder that cannot be written is simply read again next time.
	_ = writeCache(cache, head, ds)
	return ds, nil
}

// loadImage decodes the image at path and writes it, resized and converted, into dst ([h, w, c]).
func loadImage(path string, dst []uint8, h, w, c int, rs *resizer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return fmt.Errorf("data: file %s: decode: %w (want a PNG or JPEG image)", path, err)
	}
	b := img.Bounds()
	sh, sw := b.Dy(), b.Dx()
	if sh <= 0 || sw <= 0 {
		return fmt.Errorf("data: file %s: empty image", path)
	}
	src := make([]float32, sh*sw*c)
	for y := range sh {
		for x := range sw {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA() // alpha-premultiplied: over black
			i := (y*sw + x) * c
			if c == 1 {
				src[i] = (0.299*float32(r) + 0.587*float32(g) + 0.114*float32(bl)) / 257
			} else {
				src[i], src[i+1], src[i+2] = float32(r)/257, float32(g)/257, float32(bl)/257
			}
		}
	}
	out := make([]float32, h*w*c)
	rs.resize(out, src, sh, sw, c, 0, 0, float64(sh), float64(sw), h, w)
	for i, v := range out {
		dst[i] = uint8(min(255, max(0, v+0.5)))
	}
	return nil
}
