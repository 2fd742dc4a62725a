package data

import (
	"math"
	"testing"
)

// knownImage is an h×w×c image with distinct values v(y, x, ch) = (y·w + x)·c + ch + 1, over 1000.
func knownImage(h, w, c int) *Image {
	img := &Image{Pix: make([]float32, h*w*c), H: h, W: w, C: c}
	for i := range img.Pix {
		img.Pix[i] = float32(i+1) / 1000
	}
	return img
}

func cloneImage(img *Image) *Image {
	return &Image{Pix: append([]float32{}, img.Pix...), H: img.H, W: img.W, C: img.C}
}

func TestRandomCropExact(t *testing.T) {
	src := knownImage(6, 5, 3)
	seen := map[[2]int]bool{}
	for seed := range uint64(400) {
		img := cloneImage(src)
		var ws Workspace
		RandomCrop{H: 6, W: 5, Padding: 2}.Apply(img, &ws, NewRNG(seed))
		// Replay the draws: top, then left, each uniform over the 2·padding+1 placements.
		r := NewRNG(seed)
		top, left := r.IntN(5)-2, r.IntN(5)-2
		seen[[2]int{top, left}] = true
		for y := range 6 {
			for x := range 5 {
				for ch := range 3 {
					var want float32
					if sy, sx := y+top, x+left; sy >= 0 && sy < 6 && sx >= 0 && sx < 5 {
						want = src.Pix[(sy*5+sx)*3+ch]
					}
					if got := img.Pix[(y*5+x)*3+ch]; got != want {
						t.Fatalf("seed %d offset (%d,%d): (%d,%d,%d) = %v, want %v", seed, top, left, y, x, ch, got, want)
					}
				}
			}
		}
	}
	if len(seen) != 25 {
		t.Fatalf("%d of the 25 placements drawn in 400 tries", len(seen))
	}
}

func TestHFlipAndPadExact(t *testing.T) {
	src := knownImage(3, 4, 2)
	img := cloneImage(src)
	var ws Workspace
	HFlip{P: 1}.Apply(img, &ws, NewRNG(1))
	for y := range 3 {
		for x := range 4 {
			for ch := range 2 {
				if img.Pix[(y*4+x)*2+ch] != src.Pix[(y*4+3-x)*2+ch] {
					t.Fatalf("flip (%d,%d,%d)", y, x, ch)
				}
			}
		}
	}
	HFlip{P: 0}.Apply(img, &ws, NewRNG(1))
	HFlip{P: 1}.Apply(img, &ws, NewRNG(2))
	for i := range img.Pix {
		if img.Pix[i] != src.Pix[i] {
			t.Fatal("flip twice is not the identity")
		}
	}
	// 28×28 → 32×32: 2 zero pixels on each side.
	g := knownImage(28, 28, 1)
	PadTo{H: 32, W: 32}.Apply(g, &ws, nil)
	if g.H != 32 || g.W != 32 {
		t.Fatalf("pad gave %dx%d", g.H, g.W)
	}
	for y := range 32 {
		for x := range 32 {
			var want float32
			if y >= 2 && y < 30 && x >= 2 && x < 30 {
				want = float32((y-2)*28+(x-2)+1) / 1000
			}
			if g.Pix[y*32+x] != want {
				t.Fatalf("pad (%d,%d) = %v, want %v", y, x, g.Pix[y*32+x], want)
			}
		}
	}
}

func TestRandomResizedCropWindow(t *testing.T) {
	op := RandomResizedCrop{H: 8, W: 8, ScaleMin: 0.08, ScaleMax: 1, RatioMin: 3.0 / 4, RatioMax: 4.0 / 3}
	rng := NewRNG(7)
	for range 2000 {
		top, left, h, w := op.Window(32, 32, rng)
		if top < 0 || left < 0 || h < 1 || w < 1 || top+h > 32 || left+w > 32 {
			t.Fatalf("window %d %d %d %d outside the image", top, left, h, w)
		}
		area := float64(h*w) / 1024
		if area < 0.06 || area > 1 {
			t.Fatalf("area fraction %v", area)
		}
	}
	// Fallback on an extreme aspect: scale > 1 is never possible, so it takes the centre crop with
	// the ratio clamped.
	fb := RandomResizedCrop{H: 4, W: 4, ScaleMin: 2, ScaleMax: 3, RatioMin: 1, RatioMax: 1}
	top, left, h, w := fb.Window(10, 40, rng)
	if h != 10 || w != 10 || top != 0 || left != 15 {
		t.Fatalf("fallback window %d %d %d %d", top, left, h, w)
	}
	// Scale 1, ratio 1 on a square image at the same size: the identity.
	src := knownImage(12, 12, 3)
	img := cloneImage(src)
	var ws Workspace
	RandomResizedCrop{H: 12, W: 12, ScaleMin: 1, ScaleMax: 1, RatioMin: 1, RatioMax: 1}.Apply(img, &ws, NewRNG(3))
	for i := range src.Pix {
		if img.Pix[i] != src.Pix[i] {
			t.Fatal("full-window same-size crop is not the identity")
		}
	}
}

func TestColorAdjustmentsClosedForm(t *testing.T) {
	src := &Image{Pix: []float32{0.9, 0.2, 0.1, 0.3, 0.6, 0.5, 0.05, 0.4, 0.95, 0.5, 0.5, 0.5}, H: 2, W: 2, C: 3}
	lum := func(p []float32, i int) float64 {
		return 0.299*float64(p[i]) + 0.587*float64(p[i+1]) + 0.114*float64(p[i+2])
	}
	near := func(a float32, b float64) bool { return math.Abs(float64(a)-b) < 1e-6 }

	img := cloneImage(src)
	adjustSaturation(img, 0) // saturation 0: gray
	for i := 0; i < 12; i += 3 {
		for k := range 3 {
			if !near(img.Pix[i+k], lum(src.Pix, i)) {
				t.Fatalf("saturation 0: %v", img.Pix)
			}
		}
	}
	img = cloneImage(src)
	adjustSaturation(img, 1)
	adjustHue(img, 0)
	adjustBrightness(img, 1)
	adjustContrast(img, 1)
	for i := range src.Pix {
		if !near(img.Pix[i], float64(src.Pix[i])) {
			t.Fatalf("identity factors changed value %d: %v vs %v", i, img.Pix[i], src.Pix[i])
		}
	}
	img = cloneImage(src)
	adjustContrast(img, 0) // contrast 0: the mean luma everywhere
	var m float64
	for i := 0; i < 12; i += 3 {
		m += lum(src.Pix, i) / 4
	}
	for _, v := range img.Pix {
		if !near(v, m) {
			t.Fatalf("contrast 0: %v, want %v", img.Pix, m)
		}
	}
	img = cloneImage(src)
	adjustBrightness(img, 2) // brightness: scaled and clipped
	for i, v := range img.Pix {
		if !near(v, math.Min(1, 2*float64(src.Pix[i]))) {
			t.Fatalf("brightness 2: %v", img.Pix)
		}
	}
	// Hue: a third of a turn sends red to green and green to blue; a full turn is the identity.
	rg := &Image{Pix: []float32{1, 0, 0, 0, 0.5, 0}, H: 1, W: 2, C: 3}
	adjustHue(rg, 1.0/3)
	if !near(rg.Pix[0], 0) || !near(rg.Pix[1], 1) || !near(rg.Pix[2], 0) || !near(rg.Pix[3], 0) || !near(rg.Pix[4], 0) || !near(rg.Pix[5], 0.5) {
		t.Fatalf("hue 1/3: %v", rg.Pix)
	}
	img = cloneImage(src)
	adjustHue(img, 1)
	for i := range src.Pix {
		if !near(img.Pix[i], float64(src.Pix[i])) {
			t.Fatalf("hue turn: %v", img.Pix)
		}
	}
	// HSV round trip over a grid.
	for r := float32(0); r <= 1; r += 0.1 {
		for g := float32(0); g <= 1; g += 0.1 {
			for b := float32(0); b <= 1; b += 0.1 {
				h, s, v := rgbToHSV(r, g, b)
				r2, g2, b2 := hsvToRGB(h, s, v)
				if math.Abs(float64(r-r2))+math.Abs(float64(g-g2))+math.Abs(float64(b-b2)) > 1e-5 {
					t.Fatalf("HSV round trip %v %v %v → %v %v %v", r, g, b, r2, g2, b2)
				}
			}
		}
	}
}

func TestOneChannelBehaviour(t *testing.T) {
	src := knownImage(5, 5, 1)
	// Saturation, hue and grayscale: unchanged on 1 channel.
	img := cloneImage(src)
	var ws Workspace
	ColorJitter{Saturation: 0.8, Hue: 0.2, P: 1}.Apply(img, &ws, NewRNG(1))
	RandomGrayscale{P: 1}.Apply(img, &ws, NewRNG(1))
	for i := range src.Pix {
		if img.Pix[i] != src.Pix[i] {
			t.Fatal("saturation/hue/grayscale changed a 1-channel image")
		}
	}
	// Contrast blends with the image mean.
	img = cloneImage(src)
	adjustContrast(img, 0.5)
	var m float64
	for _, v := range src.Pix {
		m += float64(v) / 25
	}
	for i, v := range img.Pix {
		if math.Abs(float64(v)-(0.5*float64(src.Pix[i])+0.5*m)) > 1e-6 {
			t.Fatal("1-channel contrast")
		}
	}
	// RGB grayscale: three equal channels of luma.
	rgb := knownImage(2, 2, 3)
	RandomGrayscale{P: 1}.Apply(rgb, &ws, NewRNG(1))
	for i := 0; i < len(rgb.Pix); i += 3 {
		if rgb.Pix[i] != rgb.Pix[i+1] || rgb.Pix[i] != rgb.Pix[i+2] {
			t.Fatal("grayscale channels differ")
		}
	}
}

func TestGaussianBlurAgainstNaive(t *testing.T) {
	src := knownImage(7, 6, 3)
	for i := range src.Pix {
		src.Pix[i] = float32(math.Mod(float64(i)*0.37, 1))
	}
	img := cloneImage(src)
	var ws Workspace
	op := GaussianBlur{Kernel: 5, SigmaMin: 0.1, SigmaMax: 2, P: 1}
	op.Apply(img, &ws, NewRNG(9))
	r := NewRNG(9)
	// Bernoulli(1) draws nothing: the first draw is σ.
	sigma := r.Uniform(0.1, 2)
	refl := func(i, n int) int {
		if i < 0 {
			return -i
		}
		if i >= n {
			return 2*(n-1) - i
		}
		return i
	}
	k := make([]float64, 5)
	var ks float64
	for i := range k {
		k[i] = math.Exp(-float64((i-2)*(i-2)) / (2 * sigma * sigma))
		ks += k[i]
	}
	for y := range 7 {
		for x := range 6 {
			for ch := range 3 {
				var s float64
				for dy := -2; dy <= 2; dy++ {
					for dx := -2; dx <= 2; dx++ {
						s += k[dy+2] * k[dx+2] / (ks * ks) * float64(src.Pix[(refl(y+dy, 7)*6+refl(x+dx, 6))*3+ch])
					}
				}
				if got := img.Pix[(y*6+x)*3+ch]; math.Abs(float64(got)-s) > 1e-5 {
					t.Fatalf("(%d,%d,%d) = %v, want %v", y, x, ch, got, s)
				}
			}
		}
	}
	// Default kernel: 2·⌊32/20⌋+1 = 3; a constant image stays constant.
	if k := (GaussianBlur{}).kernel(32, 32); k != 3 {
		t.Fatalf("kernel for 32 px: %d", k)
	}
	c := &Image{Pix: make([]float32, 32*32*3), H: 32, W: 32, C: 3}
	for i := range c.Pix {
		c.Pix[i] = 0.25
	}
	GaussianBlur{SigmaMin: 2, SigmaMax: 2, P: 1}.Apply(c, &ws, NewRNG(1))
	for _, v := range c.Pix {
		if math.Abs(float64(v)-0.25) > 1e-6 {
			t.Fatalf("blur of a constant image: %v", v)
		}
	}
}

func TestPipelinesShapesRangesDeterminism(t *testing.T) {
	cifar := CIFARNorm()
	fm := FashionMNISTNorm()
	cases := []struct {
		name    string
		p       Pipeline
		h, w, c int
		oh, ow  int
		norm    Normalize
	}{
		{"cifar standard", StandardTransform(32, 4, cifar), 32, 32, 3, 32, 32, cifar},
		{"cifar simclr", SimCLRTransform(32, cifar, SimCLROptions{}), 32, 32, 3, 32, 32, cifar},
		{"cifar simclr strong", SimCLRTransform(32, cifar, SimCLROptions{Strong: true}), 32, 32, 3, 32, 32, cifar},
		{"fashion simclr 28", SimCLRTransform(28, fm, SimCLROptions{}), 28, 28, 1, 28, 28, fm},
		{"fashion simclr padded", SimCLRTransform(32, fm, SimCLROptions{}).PadFirst(32, 32), 28, 28, 1, 32, 32, fm},
		{"fashion standard padded", StandardTransform(32, 4, fm).PadFirst(32, 32), 28, 28, 1, 32, 32, fm},
		{"test", TestTransform(cifar), 32, 32, 3, 32, 32, cifar},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Check(tc.h, tc.w, tc.c); err != nil {
				t.Fatal(err)
			}
			oh, ow, oc := tc.p.OutputShape(tc.h, tc.w, tc.c)
			if oh != tc.oh || ow != tc.ow || oc != tc.c {
				t.Fatalf("output %dx%dx%d", oh, ow, oc)
			}
			src := make([]uint8, tc.h*tc.w*tc.c)
			for i := range src {
				src[i] = uint8(i * 13)
			}
			var ws Workspace
			a := make([]float32, oh*ow*oc)
			b := make([]float32, len(a))
			d := make([]float32, len(a))
			for seed := range uint64(50) {
				if err := tc.p.Apply(a, src, tc.h, tc.w, tc.c, &ws, NewRNG(seed)); err != nil {
					t.Fatal(err)
				}
				if err := tc.p.Apply(b, src, tc.h, tc.w, tc.c, &Workspace{}, NewRNG(seed)); err != nil {
					t.Fatal(err)
				}
				for i, v := range a {
					ch := i % oc
					k := min(ch, len(tc.norm.Mean)-1)
					lo := (0 - tc.norm.Mean[k]) / tc.norm.Std[k]
					hi := (1 - tc.norm.Mean[k]) / tc.norm.Std[k]
					if v != b[i] {
						t.Fatalf("seed %d: not deterministic", seed)
					}
					if math.IsNaN(float64(v)) || v < lo-1e-5 || v > hi+1e-5 {
						t.Fatalf("seed %d: value %v outside [%v, %v]", seed, v, lo, hi)
					}
				}
			}
			_ = tc.p.Apply(d, src, tc.h, tc.w, tc.c, &ws, NewRNG(12345))
			if tc.name != "test" && equalF32(a, d) {
				t.Fatal("different seeds gave the same augmentation")
			}
			if err := tc.p.Apply(a[:1], src, tc.h, tc.w, tc.c, &ws, NewRNG(1)); err == nil {
				t.Fatal("short destination accepted")
			}
		})
	}
	// The test transform is exactly (x/255 − mean)/std.
	src := []uint8{0, 128, 255, 7, 9, 200}
	out := make([]float32, 6)
	if err := TestTransform(cifar).Apply(out, src, 1, 2, 3, &Workspace{}, NewRNG(0)); err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		want := (float64(src[i])/255 - float64(cifar.Mean[i%3])) / float64(cifar.Std[i%3])
		if math.Abs(float64(v)-want) > 1e-5 {
			t.Fatalf("normalise %d: %v, want %v", i, v, want)
		}
	}
	// Bad configurations are reported, not panicked on.
	if err := TestTransform(cifar).Check(28, 28, 1); err == nil {
		t.Fatal("3-channel normalisation accepted for 1-channel images")
	}
	if err := StandardTransform(40, 2, cifar).Check(32, 32, 3); err == nil {
		t.Fatal("crop larger than the padded image accepted")
	}
}

func equalF32(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRNG(t *testing.T) {
	a, b := NewRNG(1, 2, 3), NewRNG(1, 2, 3)
	for range 100 {
		if a.Uint64() != b.Uint64() {
			t.Fatal("same seeds, different streams")
		}
	}
	if NewRNG(1, 2, 3).Uint64() == NewRNG(1, 2, 4).Uint64() {
		t.Fatal("different seeds, same first value")
	}
	// IntN is uniform enough: chi-square over 7 buckets.
	r := NewRNG(5)
	var counts [7]int
	const n = 70000
	for range n {
		counts[r.IntN(7)]++
	}
	var chi float64
	for _, c := range counts {
		d := float64(c) - n/7.0
		chi += d * d / (n / 7.0)
	}
	if chi > 30 { // 6 degrees of freedom: p < 1e-4
		t.Fatalf("chi-square %v, counts %v", chi, counts)
	}
	p := r.Perm(10)
	seen := map[int]bool{}
	for _, v := range p {
		seen[v] = true
	}
	if len(seen) != 10 {
		t.Fatalf("Perm %v", p)
	}
}

// TestSimCLROptionsSteps checks that each option of SimCLRTransform changes exactly the step it
// names.
func TestSimCLROptionsSteps(t *testing.T) {
	norm := FashionMNISTNorm()
	find := func(p Pipeline) (rrc *RandomResizedCrop, flip, jit, blur int, cj ColorJitter) {
		for _, op := range p.Ops {
			switch o := op.(type) {
			case RandomResizedCrop:
				rrc = &o
			case HFlip:
				flip++
			case ColorJitter:
				jit++
				cj = o
			case GaussianBlur:
				blur++
			}
		}
		return
	}
	rrc, flip, jit, blur, cj := find(SimCLRTransform(28, norm, SimCLROptions{}))
	if rrc == nil || rrc.ScaleMin != 0.08 || rrc.ScaleMax != 1 || flip != 1 || jit != 1 || blur != 1 ||
		cj != (ColorJitter{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1, P: 0.8}) {
		t.Fatalf("default: crop %+v, flip %d, jitter %d (%+v), blur %d", rrc, flip, jit, cj, blur)
	}
	if _, _, _, _, cj = find(SimCLRTransform(28, norm, SimCLROptions{Strong: true})); cj.Brightness != 0.8 || cj.Hue != 0.2 {
		t.Fatalf("strong jitter: %+v", cj)
	}
	rrc, flip, jit, blur, cj = find(SimCLRTransform(28, norm, SimCLROptions{ScaleMin: 0.3, Jitter: 0.6, Strong: true, NoBlur: true, NoFlip: true}))
	if rrc == nil || rrc.ScaleMin != 0.3 || flip != 0 || jit != 1 || blur != 0 ||
		cj != (ColorJitter{Brightness: 0.6, Contrast: 0.6, Saturation: 0.6, Hue: 0.15, P: 0.8}) {
		t.Fatalf("options: crop %+v, flip %d, jitter %d (%+v), blur %d", rrc, flip, jit, cj, blur)
	}
	if _, _, jit, _, _ = find(SimCLRTransform(28, norm, SimCLROptions{NoJitter: true, Jitter: 0.5})); jit != 0 {
		t.Fatalf("NoJitter kept %d colour jitters", jit)
	}
	// Solarization: absent by default, last before the normalisation when asked for.
	for _, o := range []SimCLROptions{{}, {Solarize: 0.2, SolarizeThreshold: 0.5}} {
		ops := SimCLRTransform(28, norm, o).Ops
		sol, last := ops[len(ops)-2].(Solarize)
		for _, op := range ops[:len(ops)-2] {
			if _, ok := op.(Solarize); ok {
				t.Fatalf("%+v: a solarization before the last step", o)
			}
		}
		if last != (o.Solarize > 0) || (last && sol != (Solarize{Threshold: 0.5, P: 0.2})) {
			t.Fatalf("%+v: second-to-last op %+v", o, ops[len(ops)-2])
		}
	}
	// A larger ScaleMin keeps every drawn window at least that fraction of the image (up to the
	// rounding of the window's sides).
	rng := NewRNG(3)
	o := RandomResizedCrop{H: 28, W: 28, ScaleMin: 0.3, ScaleMax: 1, RatioMin: 3.0 / 4, RatioMax: 4.0 / 3}
	for range 500 {
		_, _, ch, cw := o.Window(28, 28, rng)
		if float64((ch+1)*(cw+1)) < 0.3*28*28 {
			t.Fatalf("window %dx%d smaller than 30%% of 28x28", ch, cw)
		}
	}
}

func TestSolarize(t *testing.T) {
	src := &Image{H: 1, W: 5, C: 1, Pix: []float32{0, 0.25, 0.5, 0.75, 1}}
	var ws Workspace
	img := cloneImage(src)
	Solarize{Threshold: 0.5, P: 1}.Apply(img, &ws, NewRNG(1))
	want := []float32{0, 0.25, 0.5, 0.25, 0}
	for i, v := range img.Pix {
		if v != want[i] {
			t.Fatalf("solarized %v, want %v", img.Pix, want)
		}
	}
	img = cloneImage(src)
	Solarize{Threshold: 0.5, P: 0}.Apply(img, &ws, NewRNG(1))
	for i, v := range img.Pix {
		if v != src.Pix[i] {
			t.Fatal("P 0 changed the image")
		}
	}
	// With P 0.3 about 30% of images are solarized.
	rng := NewRNG(7)
	n := 0
	for range 2000 {
		img = cloneImage(src)
		Solarize{Threshold: 0.5, P: 0.3}.Apply(img, &ws, rng)
		if img.Pix[4] == 0 {
			n++
		}
	}
	if n < 520 || n > 680 {
		t.Errorf("%d of 2000 solarized at P 0.3", n)
	}
	if err := (Solarize{Threshold: 0.5, P: 1.5}).check(1, 1, 1); err == nil {
		t.Error("P 1.5 accepted")
	}
}
