package data

import (
	"fmt"
	"math"
)

// Image is a float32 image [H, W, C] (channels-last). Augmentations see pixel values in [0, 1];
// Normalize maps them to (x − mean) / std.
type Image struct {
	Pix     []float32
	H, W, C int
}

// Workspace holds the scratch buffers that one goroutine's augmentations reuse from image to image.
// It is not safe for concurrent use; the zero value is ready.
type Workspace struct {
	main, spare []float32
	rs          resizer
	tmp, pad    []float32
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n, n+n/4)
	}
	return b[:n]
}

// replace makes out (a buffer from ws.out) img's pixels and keeps the old ones as the spare buffer.
func (ws *Workspace) replace(img *Image, out []float32, h, w, c int) {
	ws.spare = img.Pix
	img.Pix, img.H, img.W, img.C = out, h, w, c
}

// out returns a spare buffer of n values, distinct from the image's.
func (ws *Workspace) out(n int) []float32 { return grow(ws.spare, n) }

// Op is one augmentation step.
type Op interface {
	// OutputShape is the shape Apply gives an [h, w, c] image.
	OutputShape(h, w, c int) (int, int, int)
	// Apply transforms img (values in [0, 1]) in place, drawing its randomness from rng; it may swap
	// img.Pix with a buffer of ws.
	Apply(img *Image, ws *Workspace, rng *RNG)
}

// checker is implemented by ops that accept only some input shapes.
type checker interface{ check(h, w, c int) error }

// Pipeline is a sequence of augmentation ops applied to uint8 images, ending (typically) with a
// Normalize. Its output is float32.
type Pipeline struct {
	Ops []Op
}

// OutputShape is the shape the pipeline gives an [h, w, c] image.
func (p Pipeline) OutputShape(h, w, c int) (int, int, int) {
	for _, op := range p.Ops {
		h, w, c = op.OutputShape(h, w, c)
	}
	return h, w, c
}

// Check reports whether the pipeline accepts [h, w, c] images.
func (p Pipeline) Check(h, w, c int) error {
	for i, op := range p.Ops {
		if ck, ok := op.(checker); ok {
			if err := ck.check(h, w, c); err != nil {
				return fmt.Errorf("data: augmentation step %d (%T) on %dx%dx%d images: %w", i, op, h, w, c, err)
			}
		}
		h, w, c = op.OutputShape(h, w, c)
		if h <= 0 || w <= 0 || c <= 0 {
			return fmt.Errorf("data: augmentation step %d (%T) gives an empty %dx%dx%d image", i, op, h, w, c)
		}
	}
	return nil
}

// PadFirst returns a copy of p that first zero-pads images to at least h×w (e.g. 28×28 to 32×32).
func (p Pipeline) PadFirst(h, w int) Pipeline {
	return Pipeline{Ops: append([]Op{PadTo{H: h, W: w}}, p.Ops...)}
}

// Apply runs the pipeline on src (uint8 [h, w, c]) and writes the result into dst, whose length must
// be the product of OutputShape(h, w, c).
func (p Pipeline) Apply(dst []float32, src []uint8, h, w, c int, ws *Workspace, rng *RNG) error {
	if len(src) != h*w*c {
		return fmt.Errorf("data: augment: %d source bytes for a %dx%dx%d image", len(src), h, w, c)
	}
	oh, ow, oc := p.OutputShape(h, w, c)
	if len(dst) != oh*ow*oc {
		return fmt.Errorf("data: augment: destination of %d values for a %dx%dx%d output", len(dst), oh, ow, oc)
	}
	ws.main = grow(ws.main, len(src))
	img := Image{Pix: ws.main, H: h, W: w, C: c}
	for i, v := range src {
		img.Pix[i] = float32(v) * (1.0 / 255)
	}
	for _, op := range p.Ops {
		op.Apply(&img, ws, rng)
	}
	ws.main = img.Pix
	copy(dst, img.Pix)
	return nil
}

// PadTo zero-pads an image, centred, to at least H×W (a dimension already as large is left alone).
type PadTo struct{ H, W int }

// OutputShape implements Op.
func (o PadTo) OutputShape(h, w, c int) (int, int, int) { return max(h, o.H), max(w, o.W), c }

// Apply implements Op.
func (o PadTo) Apply(img *Image, ws *Workspace, _ *RNG) {
	h, w, c := o.OutputShape(img.H, img.W, img.C)
	if h == img.H && w == img.W {
		return
	}
	out := ws.out(h * w * c)
	clear(out)
	top, left := (h-img.H)/2, (w-img.W)/2
	row := img.W * c
	for y := range img.H {
		copy(out[((y+top)*w+left)*c:], img.Pix[y*row:(y+1)*row])
	}
	ws.replace(img, out, h, w, c)
}

// RandomCrop takes a uniformly placed H×W window of the image zero-padded by Padding pixels on every
// side (the standard CIFAR transform is RandomCrop{32, 32, 4}).
type RandomCrop struct{ H, W, Padding int }

// OutputShape implements Op.
func (o RandomCrop) OutputShape(_, _, c int) (int, int, int) { return o.H, o.W, c }

func (o RandomCrop) check(h, w, _ int) error {
	if o.H <= 0 || o.W <= 0 || o.Padding < 0 {
		return fmt.Errorf("crop %dx%d with padding %d", o.H, o.W, o.Padding)
	}
	if h+2*o.Padding < o.H || w+2*o.Padding < o.W {
		return fmt.Errorf("crop %dx%d larger than the padded %dx%d image", o.H, o.W, h+2*o.Padding, w+2*o.Padding)
	}
	return nil
}

// Apply implements Op.
func (o RandomCrop) Apply(img *Image, ws *Workspace, rng *RNG) {
	top := rng.IntN(img.H+2*o.Padding-o.H+1) - o.Padding
	left := rng.IntN(img.W+2*o.Padding-o.W+1) - o.Padding
	cropInto(img, ws, top, left, o.H, o.W)
}

// CenterCrop takes the H×W window at the centre of the image, its top-left corner at ⌊(h−H)/2⌋,
// ⌊(w−W)/2⌋ (torchvision rounds half to even: the same but for odd margins of 4k+2 ± 1 pixels,
// where it is one pixel lower or right): the evaluation crop of FolderRecipe.
type CenterCrop struct{ H, W int }

// OutputShape implements Op.
func (o CenterCrop) OutputShape(_, _, c int) (int, int, int) { return o.H, o.W, c }

func (o CenterCrop) check(h, w, _ int) error {
	if o.H <= 0 || o.W <= 0 || o.H > h || o.W > w {
		return fmt.Errorf("center crop %dx%d of a %dx%d image: want a positive size within the image", o.H, o.W, h, w)
	}
	return nil
}

// Apply implements Op.
func (o CenterCrop) Apply(img *Image, ws *Workspace, _ *RNG) {
	cropInto(img, ws, (img.H-o.H)/2, (img.W-o.W)/2, o.H, o.W)
}

// cropInto replaces img by its window at (top, left) of size h×w; pixels outside the image are zero.
func cropInto(img *Image, ws *Workspace, top, left, h, w int) {
	c := img.C
	out := ws.out(h * w * c)
	for y := range h {
		drow := out[y*w*c : (y+1)*w*c]
		sy := y + top
		if sy < 0 || sy >= img.H {
			clear(drow)
			continue
		}
		x0, x1 := max(0, -left), min(w, img.W-left) // destination columns that have a source
		if x1 <= x0 {
			clear(drow)
			continue
		}
		clear(drow[:x0*c])
		copy(drow[x0*c:x1*c], img.Pix[(sy*img.W+x0+left)*c:(sy*img.W+x1+left)*c])
		clear(drow[x1*c:])
	}
	ws.replace(img, out, h, w, c)
}

// HFlip mirrors the image left–right with probability P.
type HFlip struct{ P float64 }

// OutputShape implements Op.
func (o HFlip) OutputShape(h, w, c int) (int, int, int) { return h, w, c }

// Apply implements Op.
func (o HFlip) Apply(img *Image, _ *Workspace, rng *RNG) {
	if !rng.Bernoulli(o.P) {
		return
	}
	c := img.C
	for y := range img.H {
		row := img.Pix[y*img.W*c : (y+1)*img.W*c]
		for a, b := 0, img.W-1; a < b; a, b = a+1, b-1 {
			for ch := range c {
				row[a*c+ch], row[b*c+ch] = row[b*c+ch], row[a*c+ch]
			}
		}
	}
}

// RandomResizedCrop crops a random window whose area is a fraction in [ScaleMin, ScaleMax] of the
// image and whose aspect ratio (width/height) is log-uniform in [RatioMin, RatioMax], and resizes it
// to H×W (bilinear). After 10 failed draws it falls back to the largest centred window with a ratio
// in range. SimCLR uses scale [0.08, 1] and ratio [3/4, 4/3].
type RandomResizedCrop struct {
	H, W               int
	ScaleMin, ScaleMax float64
	RatioMin, RatioMax float64
}

// OutputShape implements Op.
func (o RandomResizedCrop) OutputShape(_, _, c int) (int, int, int) { return o.H, o.W, c }

func (o RandomResizedCrop) check(_, _, _ int) error {
	if o.H <= 0 || o.W <= 0 || !(0 < o.ScaleMin && o.ScaleMin <= o.ScaleMax) || !(0 < o.RatioMin && o.RatioMin <= o.RatioMax) {
		return fmt.Errorf("size %dx%d, scale [%g, %g], ratio [%g, %g]", o.H, o.W, o.ScaleMin, o.ScaleMax, o.RatioMin, o.RatioMax)
	}
	return nil
}

// Window draws the crop window (top, left, height, width) for an h×w image.
func (o RandomResizedCrop) Window(h, w int, rng *RNG) (top, left, ch, cw int) {
	area := float64(h * w)
	for range 10 {
		target := area * rng.Uniform(o.ScaleMin, o.ScaleMax)
		ratio := rng.logUniform(o.RatioMin, o.RatioMax)
		cw = int(math.Round(math.Sqrt(target * ratio)))
		ch = int(math.Round(math.Sqrt(target / ratio)))
		if 0 < cw && cw <= w && 0 < ch && ch <= h {
			return rng.IntN(h - ch + 1), rng.IntN(w - cw + 1), ch, cw
		}
	}
	in := float64(w) / float64(h)
	switch {
	case in < o.RatioMin:
		cw, ch = w, int(math.Round(float64(w)/o.RatioMin))
	case in > o.RatioMax:
		ch, cw = h, int(math.Round(float64(h)*o.RatioMax))
	default:
		cw, ch = w, h
	}
	ch, cw = max(1, min(ch, h)), max(1, min(cw, w))
	return (h - ch) / 2, (w - cw) / 2, ch, cw
}

// Apply implements Op.
func (o RandomResizedCrop) Apply(img *Image, ws *Workspace, rng *RNG) {
	top, left, ch, cw := o.Window(img.H, img.W, rng)
	out := ws.out(o.H * o.W * img.C)
	ws.rs.resize(out, img.Pix, img.H, img.W, img.C, float64(top), float64(left), float64(ch), float64(cw), o.H, o.W)
	ws.replace(img, out, o.H, o.W, img.C)
}

// ColorJitter, with probability P, scales brightness, contrast and saturation by factors uniform in
// [1−x, 1+x] (x = Brightness, Contrast, Saturation; floored at 0) and shifts the hue by a value
// uniform in [−Hue, Hue] (in turns), the four in a random order; values are clipped to [0, 1] after
// each. Saturation and hue leave 1-channel images unchanged; contrast blends with the mean luma.
type ColorJitter struct {
	Brightness, Contrast, Saturation, Hue float64
	P                                     float64
}

// OutputShape implements Op.
func (o ColorJitter) OutputShape(h, w, c int) (int, int, int) { return h, w, c }

func (o ColorJitter) check(_, _, c int) error {
	if c != 1 && c != 3 {
		return fmt.Errorf("%d channels, want 1 or 3", c)
	}
	if o.Hue < 0 || o.Hue > 0.5 || o.Brightness < 0 || o.Contrast < 0 || o.Saturation < 0 {
		return fmt.Errorf("strengths %g/%g/%g/%g: want non-negative, hue ≤ 0.5", o.Brightness, o.Contrast, o.Saturation, o.Hue)
	}
	return nil
}

// Apply implements Op.
func (o ColorJitter) Apply(img *Image, _ *Workspace, rng *RNG) {
	if !rng.Bernoulli(o.P) {
		return
	}
	order := [4]int{0, 1, 2, 3}
	for i := 3; i > 0; i-- {
		j := rng.IntN(i + 1)
		order[i], order[j] = order[j], order[i]
	}
	factor := func(x float64) float64 { return rng.Uniform(max(0, 1-x), 1+x) }
	b, c, s := factor(o.Brightness), factor(o.Contrast), factor(o.Saturation)
	h := rng.Uniform(-o.Hue, o.Hue)
	for _, k := range order {
		switch k {
		case 0:
			if o.Brightness > 0 {
				adjustBrightness(img, float32(b))
			}
		case 1:
			if o.Contrast > 0 {
				adjustContrast(img, float32(c))
			}
		case 2:
			if o.Saturation > 0 {
				adjustSaturation(img, float32(s))
			}
		case 3:
			if o.Hue > 0 {
				adjustHue(img, h)
			}
		}
	}
}

// clip01 clamps x to [0, 1] (plain comparisons: the min/max built-ins' NaN handling is slower).
func clip01(x float32) float32 {
	if x < 0 {
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}

// luma is ITU-R 601 luma, what PIL's "L" conversion computes.
func luma(r, g, b float32) float32 { return 0.299*r + 0.587*g + 0.114*b }

func adjustBrightness(img *Image, f float32) {
	for i, v := range img.Pix {
		img.Pix[i] = clip01(v * f)
	}
}

func adjustContrast(img *Image, f float32) {
	var sum float64
	n := img.H * img.W
	if img.C == 3 {
		for i := 0; i < len(img.Pix); i += 3 {
			sum += float64(luma(img.Pix[i], img.Pix[i+1], img.Pix[i+2]))
		}
	} else {
		for _, v := range img.Pix {
			sum += float64(v)
		}
	}
	m := float32(sum/float64(n)) * (1 - f)
	for i, v := range img.Pix {
		img.Pix[i] = clip01(f*v + m)
	}
}

func adjustSaturation(img *Image, f float32) {
	if img.C != 3 {
		return
	}
	p := img.Pix
	for i := 0; i < len(p); i += 3 {
		g := luma(p[i], p[i+1], p[i+2]) * (1 - f)
		p[i], p[i+1], p[i+2] = clip01(f*p[i]+g), clip01(f*p[i+1]+g), clip01(f*p[i+2]+g)
	}
}

// adjustHue rotates the hue of every pixel by shift turns (HSV space).
func adjustHue(img *Image, shift float64) {
	if img.C != 3 {
		return
	}
	p := img.Pix
	for i := 0; i < len(p); i += 3 {
		h, s, v := rgbToHSV(p[i], p[i+1], p[i+2])
		h += float32(shift)
		h -= float32(math.Floor(float64(h)))
		p[i], p[i+1], p[i+2] = hsvToRGB(h, s, v)
	}
}

// rgbToHSV converts r, g, b in [0, 1] to hue (turns, [0, 1)), saturation and value.
func rgbToHSV(r, g, b float32) (h, s, v float32) {
	mx, mn := r, r
	if g > mx {
		mx = g
	} else if g < mn {
		mn = g
	}
	if b > mx {
		mx = b
	} else if b < mn {
		mn = b
	}
	v = mx
	d := mx - mn
	if d <= 0 {
		return 0, 0, v
	}
	s = d / mx
	switch mx {
	case r:
		h = (g - b) / d
	case g:
		h = 2 + (b-r)/d
	default:
		h = 4 + (r-g)/d
	}
	h /= 6
	if h < 0 {
		h++
	}
	return h, s, v
}

// hsvToRGB is the inverse of rgbToHSV.
func hsvToRGB(h, s, v float32) (r, g, b float32) {
	h6 := h * 6
	i := int(h6)
	f := h6 - float32(i)
	p := v * (1 - s)
	q := v * (1 - s*f)
	t := v * (1 - s*(1-f))
	switch i % 6 {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	default:
		return v, p, q
	}
}

// RandomGrayscale replaces, with probability P, each channel of an RGB image by the pixel's luma
// (0.299R + 0.587G + 0.114B), keeping 3 channels. A 1-channel image is already gray: unchanged.
type RandomGrayscale struct{ P float64 }

// OutputShape implements Op.
func (o RandomGrayscale) OutputShape(h, w, c int) (int, int, int) { return h, w, c }

// Apply implements Op.
func (o RandomGrayscale) Apply(img *Image, _ *Workspace, rng *RNG) {
	if !rng.Bernoulli(o.P) || img.C != 3 {
		return
	}
	p := img.Pix
	for i := 0; i < len(p); i += 3 {
		l := luma(p[i], p[i+1], p[i+2])
		p[i], p[i+1], p[i+2] = l, l, l
	}
}

// Solarize, with probability P, inverts every value at or above Threshold (v → 1 − v), as BYOL's
// augmentation does (threshold 0.5 on [0, 1] images); values below it are kept.
type Solarize struct{ Threshold, P float64 }

// OutputShape implements Op.
func (o Solarize) OutputShape(h, w, c int) (int, int, int) { return h, w, c }

func (o Solarize) check(_, _, _ int) error {
	if o.P < 0 || o.P > 1 || o.Threshold < 0 || o.Threshold > 1 {
		return fmt.Errorf("probability %g, threshold %g: want both in [0, 1]", o.P, o.Threshold)
	}
	return nil
}

// Apply implements Op.
func (o Solarize) Apply(img *Image, _ *Workspace, rng *RNG) {
	if !rng.Bernoulli(o.P) {
		return
	}
	t := float32(o.Threshold)
	for i, v := range img.Pix {
		if v >= t {
			img.Pix[i] = 1 - v
		}
	}
}

// GaussianBlur, with probability P, blurs with a Gaussian of σ uniform in [SigmaMin, SigmaMax] over a
// Kernel×Kernel window (odd; 0 means 2·⌊min(H, W)/20⌋ + 1, SimCLR's choice), separably, reflecting the
// image at its borders.
type GaussianBlur struct {
	Kernel             int
	SigmaMin, SigmaMax float64
	P                  float64
}

// OutputShape implements Op.
func (o GaussianBlur) OutputShape(h, w, c int) (int, int, int) { return h, w, c }

func (o GaussianBlur) check(h, w, _ int) error {
	k := o.kernel(h, w)
	if k%2 == 0 || k < 1 || !(0 < o.SigmaMin && o.SigmaMin <= o.SigmaMax) {
		return fmt.Errorf("kernel %d, sigma [%g, %g]: want an odd kernel and 0 < min ≤ max", k, o.SigmaMin, o.SigmaMax)
	}
	if k/2 >= min(h, w) {
		return fmt.Errorf("kernel %d too large for the image", k)
	}
	return nil
}

func (o GaussianBlur) kernel(h, w int) int {
	if o.Kernel > 0 {
		return o.Kernel
	}
	return 2*(min(h, w)/20) + 1
}

// Apply implements Op.
func (o GaussianBlur) Apply(img *Image, ws *Workspace, rng *RNG) {
	if !rng.Bernoulli(o.P) {
		return
	}
	sigma := rng.Uniform(o.SigmaMin, o.SigmaMax)
	k := o.kernel(img.H, img.W)
	if k <= 1 {
		return
	}
	ws.tmp = grow(ws.tmp, k)
	kern := ws.tmp
	r := k / 2
	var sum float64
	for i := range k {
		x := float64(i-r) / sigma
		kern[i] = float32(math.Exp(-0.5 * x * x))
		sum += float64(kern[i])
	}
	for i := range kern {
		kern[i] = float32(float64(kern[i]) / sum)
	}
	h, w, c := img.H, img.W, img.C
	reflect := func(i, n int) int {
		if i < 0 {
			return -i
		}
		if i >= n {
			return 2*(n-1) - i
		}
		return i
	}
	// Horizontal pass into out through a row padded by reflection, vertical pass back into img.Pix.
	out := ws.out(h * w * c)
	src := img.Pix
	rowLen := w * c
	ws.pad = grow(ws.pad, (w+2*r)*c)
	pad := ws.pad
	for y := range h {
		row := src[y*rowLen : (y+1)*rowLen]
		copy(pad[r*c:], row)
		for x := range r {
			copy(pad[x*c:(x+1)*c], row[reflect(x-r, w)*c:])
			copy(pad[(w+r+x)*c:(w+r+x+1)*c], row[reflect(w+x, w)*c:])
		}
		drow := out[y*rowLen : (y+1)*rowLen]
		clear(drow)
		for t, kt := range kern {
			p := pad[t*c : t*c+rowLen]
			for i, v := range p {
				drow[i] += kt * v
			}
		}
	}
	for y := range h {
		drow := src[y*rowLen : (y+1)*rowLen]
		clear(drow)
		for t, kt := range kern {
			sy := reflect(y+t-r, h)
			srow := out[sy*rowLen : (sy+1)*rowLen]
			for i, v := range srow {
				drow[i] += kt * v
			}
		}
	}
}

// Normalize maps each value x of channel c to (x − Mean[c]) / Std[c]. One mean and std apply to
// every channel.
type Normalize struct{ Mean, Std []float32 }

// OutputShape implements Op.
func (o Normalize) OutputShape(h, w, c int) (int, int, int) { return h, w, c }

func (o Normalize) check(_, _, c int) error {
	if len(o.Mean) != len(o.Std) || (len(o.Mean) != 1 && len(o.Mean) != c) {
		return fmt.Errorf("%d means and %d stds for %d channels", len(o.Mean), len(o.Std), c)
	}
	for _, s := range o.Std {
		if !(s > 0) {
			return fmt.Errorf("std %g: want > 0", s)
		}
	}
	return nil
}

// Apply implements Op.
func (o Normalize) Apply(img *Image, _ *Workspace, _ *RNG) {
	c := img.C
	if c > 4 {
		for i, v := range img.Pix {
			k := (i % c) % len(o.Mean)
			img.Pix[i] = (v - o.Mean[k]) / o.Std[k]
		}
		return
	}
	var mean, inv [4]float32
	for ch := range c {
		k := min(ch, len(o.Mean)-1)
		mean[ch], inv[ch] = o.Mean[k], 1/o.Std[k]
	}
	ch := 0
	for i, v := range img.Pix {
		img.Pix[i] = (v - mean[ch]) * inv[ch]
		if ch++; ch == c {
			ch = 0
		}
	}
}
