package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// writeFineGrainedFixture writes a tiny generated fine-grained dataset under root: train/ and test/
// splits of `classes` classes of `perClass` h×w images each (half PNG, half JPEG) that share one
// textured background and differ only in a small detail — a 3×3 mark whose position is the class —
// plus per-image noise and a random shift of a pixel or two, as in fine-grained data where small
// details decide. Deterministic in seed.
func writeFineGrainedFixture(t testing.TB, root string, classes, perClass, h, w int, seed uint64) {
	t.Helper()
	rng := NewRNG(seed)
	for _, split := range []string{"train", "test"} {
		for c := range classes {
			for i := range perClass {
				img := image.NewNRGBA(image.Rect(0, 0, w, h))
				dy, dx := int(rng.Uint64()%3), int(rng.Uint64()%3)
				for y := range h {
					for x := range w {
						v := uint8(96 + 40*((x/4+y/4)%2) + int(rng.Uint64()%24))
						img.Set(x, y, color.NRGBA{v, v - 10, v - 20, 255})
					}
				}
				my, mx := h/3+dy, (c+1)*w/(classes+1)+dx
				for y := my; y < min(h, my+3); y++ {
					for x := mx; x < min(w, mx+3); x++ {
						img.Set(x, y, color.NRGBA{200, 40, 40, 255})
					}
				}
				var b bytes.Buffer
				name := fmt.Sprintf("%03d", i)
				if i%2 == 0 {
					b.Write(pngBytes(t, img))
					name += ".png"
				} else {
					if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 92}); err != nil {
						t.Fatal(err)
					}
					name += ".jpg"
				}
				writeFile(t, filepath.Join(root, split, fmt.Sprintf("class_%02d", c), name), b.Bytes())
			}
		}
	}
}

// TestImageFolderCache reads the fine-grained fixture twice (the second read maps the cache, same
// labels and bytes, no decoding), then touches, adds and corrupts files and checks each change
// rebuilds the cache with the folder's new contents.
func TestImageFolderCache(t *testing.T) {
	root := t.TempDir()
	writeFineGrainedFixture(t, root, 3, 4, 40, 48, 7)
	first, err := ReadImageFolder(root, "train", WithImageSize(24, 24))
	if err != nil {
		t.Fatal(err)
	}
	cache := cachePath(root, "train", 24, 24, 3)
	st, err := os.Stat(cache)
	if err != nil || st.Size() == 0 {
		t.Fatalf("no cache file %s: %v", cache, err)
	}
	second, err := ReadImageFolder(root, "train", WithImageSize(24, 24))
	if err != nil {
		t.Fatal(err)
	}
	if second.Len() != 12 || !slices.Equal(first.Labels, second.Labels) || !bytes.Equal(first.Images, second.Images) ||
		!slices.Equal(first.Classes, second.Classes) {
		t.Fatal("the cached read differs from the decoded one")
	}
	if &first.Images[0] == &second.Images[0] {
		t.Fatal("the second read did not come from the cache")
	}
	// The cache is keyed by the size: another size decodes and caches separately.
	if small, err := ReadImageFolder(root, "train", WithImageSize(12, 12), WithChannels(1)); err != nil || small.ImageSize() != 144 {
		t.Fatalf("12x12x1: %v", err)
	}

	// Replacing an image (new content, new modification time) rebuilds the cache.
	img := filepath.Join(root, "train", "class_01", "000.png")
	writeFile(t, img, pngBytes(t, testRGBA(40, 48, 9)))
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(img, later, later); err != nil {
		t.Fatal(err)
	}
	third, err := ReadImageFolder(root, "train", WithImageSize(24, 24))
	if err != nil {
		t.Fatal(err)
	}
	idx := slices.Index(third.Labels, 1) // class_01's first file is 000.png
	size := third.ImageSize()
	if bytes.Equal(third.Images[idx*size:(idx+1)*size], first.Images[idx*size:(idx+1)*size]) {
		t.Error("a replaced image was served from the stale cache")
	}
	// An added image rebuilds it too.
	writeFile(t, filepath.Join(root, "train", "class_02", "999.png"), pngBytes(t, testRGBA(40, 48, 3)))
	if fourth, err := ReadImageFolder(root, "train", WithImageSize(24, 24)); err != nil || fourth.Len() != 13 {
		t.Fatalf("after adding an image: %v images, err %v", fourth.Len(), err)
	}
	// A corrupt cache (truncated, garbage, wrong magic) is ignored and rebuilt.
	for _, corrupt := range [][]byte{nil, []byte("IFAIMGC1\xff\xff\xff\x7f{"), []byte("not a cache at all"), []byte("IFAIMGC1\x05\x00\x00\x00{\"n\":")} {
		if err := os.WriteFile(cache, corrupt, 0o644); err != nil {
			t.Fatal(err)
		}
		ds, err := ReadImageFolder(root, "train", WithImageSize(24, 24))
		if err != nil || ds.Len() != 13 {
			t.Fatalf("corrupt cache %q: %v", corrupt, err)
		}
	}
	full, _ := os.ReadFile(cache)
	if err := os.WriteFile(cache, full[:len(full)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if ds, err := ReadImageFolder(root, "train", WithImageSize(24, 24)); err != nil || ds.Len() != 13 {
		t.Fatalf("truncated cache: %v", err)
	}
	// The cache folder is not a class.
	if ds, _ := ReadImageFolder(root, "test", WithImageSize(24, 24)); ds.NumClasses() != 3 {
		t.Errorf("test split classes %v", ds.Classes)
	}
}

// FuzzReadCache feeds arbitrary files to the cache reader: it never panics, and accepts a file only
// when its sizes agree with the header it expects.
func FuzzReadCache(f *testing.F) {
	want := cacheHeader{Fingerprint: "x", N: 2, H: 1, W: 2, C: 1, Classes: []string{"a", "b"}}
	f.Add([]byte("IFAIMGC1\x05\x00\x00\x00{\"n\":"))
	f.Add([]byte("IFAIMGC1\x50\x00\x00\x00{\"fingerprint\":\"x\",\"n\":2,\"h\":1,\"w\":2,\"c\":1,\"classes\":[\"a\",\"b\"]}\x00\x00\x00\x00\x01\x00\x00\x00abcd"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := filepath.Join(dir, "c.u8")
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		labels, images, ok, err := readCache(path, want)
		if ok && (len(labels) != 2 || len(images) != 4 || err != nil) {
			t.Fatalf("accepted %d labels and %d image bytes", len(labels), len(images))
		}
	})
}

// TestFolderRecipe checks the centre crop against indexing by hand (odd and even margins) and the
// recipe's shapes: decoded at 8/7 of the size, trained and tested at the size.
func TestFolderRecipe(t *testing.T) {
	const h, w, c = 7, 6, 2
	src := make([]uint8, h*w*c)
	for i := range src {
		src[i] = uint8(i)
	}
	dst := make([]float32, 4*3*c)
	if err := (Pipeline{Ops: []Op{CenterCrop{H: 4, W: 3}}}).Apply(dst, src, h, w, c, &Workspace{}, NewRNG(1)); err != nil {
		t.Fatal(err)
	}
	for y := range 4 {
		for x := range 3 {
			for k := range c {
				if got, want := dst[(y*3+x)*c+k], float32(src[((y+1)*w+x+1)*c+k])*(1.0/255); got != want {
					t.Fatalf("crop[%d,%d,%d] = %v, want the image's [%d,%d] %v", y, x, k, got, y+1, x+1, want)
				}
			}
		}
	}
	if err := (Pipeline{Ops: []Op{CenterCrop{H: 8, W: 3}}}).Check(h, w, c); err == nil {
		t.Error("a crop taller than the image passed the check")
	}
	for size, store := range map[int]int{64: 73, 128: 146, 224: 256} {
		if got := FolderStoreSize(size); got != store {
			t.Errorf("store size for %d: %d, want %d", size, got, store)
		}
		train, test := FolderRecipe(size, CIFARNorm())
		for _, p := range []Pipeline{train, test} {
			if err := p.Check(store, store, 3); err != nil {
				t.Fatal(err)
			}
			if oh, ow, oc := p.OutputShape(store, store, 3); oh != size || ow != size || oc != 3 {
				t.Errorf("recipe %d: output %dx%dx%d", size, oh, ow, oc)
			}
		}
	}
}

// BenchmarkFolderRecipeLoader measures the loader of the image-folder recipe at 64, 128 and 224
// px: images decoded once into the folder cache and mapped (ReadImageFolder), then shuffled,
// random-resized-cropped, flipped, normalised and batched (64), on all cores. Compare its
// images/s with a training step's (ifa bench --model M --input SxSx3).
func BenchmarkFolderRecipeLoader(b *testing.B) {
	for _, size := range []int{64, 128, 224} {
		b.Run(fmt.Sprintf("%dpx", size), func(b *testing.B) {
			root := b.TempDir()
			store := FolderStoreSize(size)
			writeFineGrainedFixture(b, root, 4, 64, store+17, store+9, 3)
			if _, err := ReadImageFolder(root, "train", WithImageSize(store, store)); err != nil {
				b.Fatal(err)
			}
			ds, err := ReadImageFolder(root, "train", WithImageSize(store, store)) // from the cache
			if err != nil {
				b.Fatal(err)
			}
			train, _ := FolderRecipe(size, CIFARNorm())
			l, err := NewLoader(ds, LoaderConfig{BatchSize: 64, Shuffle: true, Transforms: []Pipeline{train}})
			if err != nil {
				b.Fatal(err)
			}
			e := 0
			for b.Loop() {
				for _, err := range l.Epoch(e) {
					if err != nil {
						b.Fatal(err)
					}
				}
				e++
			}
			b.ReportMetric(float64(b.N*ds.Len())/b.Elapsed().Seconds(), "images/s")
		})
	}
}
