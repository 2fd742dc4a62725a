package data

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func pngBytes(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func testRGBA(w, h, seed int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(seed + 10*x), uint8(seed + 20*y), uint8(seed + x*y), 255})
		}
	}
	return img
}

func TestReadImageFolder(t *testing.T) {
	root := t.TempDir()
	// train/<class>: classes sorted by name, dot-folders and non-images ignored.
	writeFile(t, filepath.Join(root, "train", "zebra", "a.png"), pngBytes(t, testRGBA(4, 3, 1)))
	writeFile(t, filepath.Join(root, "train", "zebra", "b.PNG"), pngBytes(t, testRGBA(4, 3, 2)))
	writeFile(t, filepath.Join(root, "train", "ant", "c.png"), pngBytes(t, testRGBA(4, 3, 3)))
	writeFile(t, filepath.Join(root, "train", "ant", "notes.txt"), []byte("not an image"))
	writeFile(t, filepath.Join(root, "train", ".cache", "d.png"), pngBytes(t, testRGBA(4, 3, 4)))
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, testRGBA(8, 6, 5), &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "test", "ant", "e.jpg"), jb.Bytes())

	ds, err := ReadImageFolder(root, "train", WithImageSize(3, 4))
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 3 || ds.NumClasses() != 2 || ds.Classes[0] != "ant" || ds.Classes[1] != "zebra" || ds.H != 3 || ds.W != 4 || ds.C != 3 {
		t.Fatalf("got %d images, classes %v, %dx%dx%d", ds.Len(), ds.Classes, ds.H, ds.W, ds.C)
	}
	if ds.Labels[0] != 0 || ds.Labels[1] != 1 || ds.Labels[2] != 1 {
		t.Fatalf("labels %v", ds.Labels)
	}
	// Same size: pixels exact.
	want := testRGBA(4, 3, 3)
	for y := range 3 {
		for x := range 4 {
			c := want.NRGBAAt(x, y)
			got := ds.Image(0)[(y*4+x)*3:]
			if got[0] != c.R || got[1] != c.G || got[2] != c.B {
				t.Fatalf("(%d,%d): %v, want %v", y, x, got[:3], c)
			}
		}
	}
	// Test split, resized 8×6 → 4×3 and gray: close to the box average of the luma.
	test, err := ReadImageFolder(root, "test", WithImageSize(3, 4), WithChannels(1))
	if err != nil {
		t.Fatal(err)
	}
	if test.Len() != 1 || test.C != 1 || test.NumClasses() != 1 {
		t.Fatalf("test: %d images, C %d", test.Len(), test.C)
	}
	src := testRGBA(8, 6, 5)
	lum := func(x, y int) float64 {
		c := src.NRGBAAt(min(max(x, 0), 7), min(max(y, 0), 5))
		return 0.299*float64(c.R) + 0.587*float64(c.G) + 0.114*float64(c.B)
	}
	// Output (1, 1) covers source rows/cols 2..3 (with the triangle's tails 1 and 4).
	var s, ws float64
	for y := 1; y <= 4; y++ {
		for x := 1; x <= 4; x++ {
			w := (1 - math.Abs(float64(y)+0.5-3)/2) * (1 - math.Abs(float64(x)+0.5-3)/2)
			s += w * lum(x, y)
			ws += w
		}
	}
	if got := float64(test.Image(0)[1*4+1]); math.Abs(got-s/ws) > 6 { // JPEG loss
		t.Fatalf("resized gray pixel %v, want about %v", got, s/ws)
	}
	// Open with a path.
	if ds2, err := Open(root, "", "train", WithImageSize(3, 4)); err != nil || ds2.Len() != 3 {
		t.Fatalf("Open(path): %v", err)
	}
}

func TestReadImageFolderErrors(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "cls", "x.txt"), []byte("x"))
	_, err := ReadImageFolder(root, "train")
	if err == nil || !strings.Contains(err.Error(), "no images") || !strings.Contains(err.Error(), root) {
		t.Fatalf("empty folder: %v", err)
	}
	_, err = ReadImageFolder(root, "test")
	if err == nil || !strings.Contains(err.Error(), "no test split") {
		t.Fatalf("missing split: %v", err)
	}
	bad := filepath.Join(root, "cls", "broken.png")
	writeFile(t, bad, []byte("\x89PNG garbage"))
	_, err = ReadImageFolder(root, "train")
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "decode") {
		t.Fatalf("broken image: %v", err)
	}
	if _, err := ReadImageFolder(root, "train", WithChannels(2)); err == nil {
		t.Fatal("2 channels accepted")
	}
}

// naiveResize is the filter written directly in 2-D, in float64: output (oy, ox) is the normalised
// sum, over the source pixels (y, x) inside the window (top, left, hh, ww), of
// tri((y+0.5−cy)/support_y)·tri((x+0.5−cx)/support_x), with tri(u) = max(0, 1−|u|), centres
// c = start + (o+0.5)·scale and support = max(1, scale).
func naiveResize(src []float32, h, w, c int, top, left, hh, ww float64, oh, ow int) []float64 {
	out := make([]float64, oh*ow*c)
	sy, sx := hh/float64(oh), ww/float64(ow)
	suy, sux := math.Max(1, sy), math.Max(1, sx)
	for oy := range oh {
		for ox := range ow {
			cy := top + (float64(oy)+0.5)*sy
			cx := left + (float64(ox)+0.5)*sx
			for ch := range c {
				var s, ws float64
				for y := max(0, int(math.Floor(top))); y < min(h, int(math.Ceil(top+hh))); y++ {
					wy := math.Max(0, 1-math.Abs(float64(y)+0.5-cy)/suy)
					for x := max(0, int(math.Floor(left))); x < min(w, int(math.Ceil(left+ww))); x++ {
						wx := math.Max(0, 1-math.Abs(float64(x)+0.5-cx)/sux)
						s += wy * wx * float64(src[(y*w+x)*c+ch])
						ws += wy * wx
					}
				}
				out[(oy*ow+ox)*c+ch] = s / ws
			}
		}
	}
	return out
}

func TestResizeAgainstNaive(t *testing.T) {
	h, w, c := 9, 7, 2
	src := make([]float32, h*w*c)
	for i := range src {
		src[i] = float32(math.Sin(float64(i)*0.7)*0.5 + 0.5)
	}
	var rs resizer
	for _, tc := range []struct {
		top, left, hh, ww float64
		oh, ow            int
	}{
		{0, 0, 9, 7, 9, 7},   // identity
		{0, 0, 9, 7, 20, 15}, // upsample
		{0, 0, 9, 7, 4, 3},   // downsample (antialiased)
		{2, 1, 5, 4, 8, 8},   // crop then upsample
		{1, 3, 6, 4, 3, 2},   // crop then downsample
		{0, 0, 9, 7, 1, 1},   // to a single pixel
	} {
		out := make([]float32, tc.oh*tc.ow*c)
		rs.resize(out, src, h, w, c, tc.top, tc.left, tc.hh, tc.ww, tc.oh, tc.ow)
		want := naiveResize(src, h, w, c, tc.top, tc.left, tc.hh, tc.ww, tc.oh, tc.ow)
		for i := range out {
			if math.Abs(float64(out[i])-want[i]) > 1e-5 {
				t.Fatalf("%+v: value %d = %v, want %v", tc, i, out[i], want[i])
			}
		}
	}
	// Identity is exact.
	out := make([]float32, len(src))
	rs.resize(out, src, h, w, c, 0, 0, 9, 7, 9, 7)
	for i := range out {
		if out[i] != src[i] {
			t.Fatalf("identity resize changed value %d", i)
		}
	}
}

func TestResizeClosedForm(t *testing.T) {
	var rs resizer
	// 1×2 → 1×4 (bilinear, half-pixel centres, clamped edges): [0, 1] → [0, .25, .75, 1].
	out := make([]float32, 4)
	rs.resize(out, []float32{0, 1}, 1, 2, 1, 0, 0, 1, 2, 1, 4)
	for i, want := range []float32{0, 0.25, 0.75, 1} {
		if math.Abs(float64(out[i]-want)) > 1e-6 {
			t.Fatalf("upsample: %v", out)
		}
	}
	// 1×4 → 1×2, antialiased: output 0 = (.75a + .75b + .25c)/1.75.
	out = out[:2]
	rs.resize(out, []float32{1, 2, 3, 4}, 1, 4, 1, 0, 0, 1, 4, 1, 2)
	if w0 := (0.75*1 + 0.75*2 + 0.25*3) / 1.75; math.Abs(float64(out[0])-w0) > 1e-6 {
		t.Fatalf("downsample: %v, want %v", out[0], w0)
	}
}
