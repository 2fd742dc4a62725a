package data

// Per-channel statistics of the training images, pixel values scaled to [0, 1].
const (
	// CIFAR-100's training-set statistics (METHODS.md §1.5), used for CIFAR-10 too.
	CIFARMeanR, CIFARMeanG, CIFARMeanB = 0.5071, 0.4867, 0.4408
	CIFARStdR, CIFARStdG, CIFARStdB    = 0.2675, 0.2565, 0.2761

	// Fashion-MNIST's 60000 training images (population std), computed from the data; a test
	// recomputes them when the dataset is installed.
	FashionMNISTMean = 0.28604059698879547
	FashionMNISTStd  = 0.3530242445149227

	// MNIST's 60000 training images (population std), the commonly published values.
	MNISTMean = 0.1306604762738429
	MNISTStd  = 0.30810780717887876
)

// CIFARNorm normalises with CIFAR-100's statistics (also used for CIFAR-10).
func CIFARNorm() Normalize {
	return Normalize{Mean: []float32{CIFARMeanR, CIFARMeanG, CIFARMeanB}, Std: []float32{CIFARStdR, CIFARStdG, CIFARStdB}}
}

// FashionMNISTNorm normalises with Fashion-MNIST's statistics.
func FashionMNISTNorm() Normalize {
	return Normalize{Mean: []float32{FashionMNISTMean}, Std: []float32{FashionMNISTStd}}
}

// MNISTNorm normalises with MNIST's statistics.
func MNISTNorm() Normalize {
	return Normalize{Mean: []float32{MNISTMean}, Std: []float32{MNISTStd}}
}

// NormFor returns the normalisation of a known dataset (any name CanonicalName accepts) and whether
// it knows it. For other data, compute Dataset.ChannelStats on the training split.
func NormFor(name string) (Normalize, bool) {
	switch CanonicalName(name) {
	case CIFAR10, CIFAR100:
		return CIFARNorm(), true
	case FashionMNIST:
		return FashionMNISTNorm(), true
	case MNIST:
		return MNISTNorm(), true
	}
	return Normalize{}, false
}

// NormFromStats builds a Normalize from Dataset.ChannelStats' output.
func NormFromStats(mean, std []float64) Normalize {
	n := Normalize{Mean: make([]float32, len(mean)), Std: make([]float32, len(std))}
	for i := range mean {
		n.Mean[i] = float32(mean[i])
	}
	for i := range std {
		n.Std[i] = float32(max(std[i], 1e-6))
	}
	return n
}

// TestTransform only normalises: the evaluation transform.
func TestTransform(norm Normalize) Pipeline { return Pipeline{Ops: []Op{norm}} }

// StandardTransform is the standard CIFAR training transform: a size×size crop of the image
// zero-padded by padding pixels (uniformly placed), a horizontal flip with probability 0.5, then
// normalisation. CIFAR uses StandardTransform(32, 4, CIFARNorm()).
func StandardTransform(size, padding int, norm Normalize) Pipeline {
	return Pipeline{Ops: []Op{RandomCrop{H: size, W: size, Padding: padding}, HFlip{P: 0.5}, norm}}
}

// FolderStoreSize is the side an image folder is decoded at for a FolderRecipe of crop size size:
// size·8/7 rounded (256 for 224, 146 for 128, 73 for 64), the usual resize-then-crop ratio 0.875.
func FolderStoreSize(size int) int { return (size*8 + 3) / 7 }

// FolderRecipe is the supervised recipe for image folders larger than 32×32 (fine-grained data):
// images decoded at FolderStoreSize(size) (ReadImageFolder's WithImageSize), trained on a random
// resized crop (area 8%–100%, aspect 3/4–4/3) to size×size with a horizontal flip, and tested on
// the size×size centre crop; both normalised.
func FolderRecipe(size int, norm Normalize) (train, test Pipeline) {
	train = Pipeline{Ops: []Op{RandomResizedCrop{H: size, W: size, ScaleMin: 0.08, ScaleMax: 1, RatioMin: 3.0 / 4, RatioMax: 4.0 / 3},
		HFlip{P: 0.5}, norm}}
	test = Pipeline{Ops: []Op{CenterCrop{H: size, W: size}, norm}}
	return train, test
}

// SimCLROptions are the strengths of the SimCLR augmentation. The zero value is SimCLR's
// augmentation with the milder colour jitter (0.4/0.4/0.4/0.1).
type SimCLROptions struct {
	// Strong selects colour jitter 0.8/0.8/0.8/0.2 (the default is 0.4/0.4/0.4/0.1).
	Strong bool
	// Jitter, when > 0, sets the brightness, contrast and saturation strengths of the colour
	// jitter to Jitter and the hue strength to Jitter/4 (overriding Strong).
	Jitter float64
	// NoJitter disables the colour jitter.
	NoJitter bool
	// ScaleMin is the smallest area fraction of the random resized crop, in (0, 1]; 0 means
	// SimCLR's 0.08. Small images (28×28) keep more of their content with a larger value.
	ScaleMin float64
	// NoFlip disables the horizontal flip.
	NoFlip bool
	// BlurKernel is the Gaussian blur's kernel size; 0 means 2·⌊size/20⌋ + 1.
	BlurKernel int
	// NoBlur disables the Gaussian blur.
	NoBlur bool
	// Solarize is the probability of BYOL's solarization after the blur; 0: none.
	Solarize float64
	// SolarizeThreshold is the solarization threshold, used as given: BYOL's is 0.5, and 0 inverts
	// the whole image.
	SolarizeThreshold float64
}

// SimCLRTransform is SimCLR's augmentation at size×size: random resized crop (scale [0.08, 1], ratio
// [3/4, 4/3], bilinear), horizontal flip (p 0.5), colour jitter (p 0.8), random grayscale (p 0.2),
// Gaussian blur (p 0.5, σ ∈ [0.1, 2]), optionally solarization, then normalisation; o adjusts the strengths and drops steps.
// On 1-channel images the saturation, hue and grayscale steps leave the image unchanged.
func SimCLRTransform(size int, norm Normalize, o SimCLROptions) Pipeline {
	jit := ColorJitter{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1, P: 0.8}
	switch {
	case o.Jitter > 0:
		jit = ColorJitter{Brightness: o.Jitter, Contrast: o.Jitter, Saturation: o.Jitter, Hue: min(0.5, o.Jitter/4), P: 0.8}
	case o.Strong:
		jit = ColorJitter{Brightness: 0.8, Contrast: 0.8, Saturation: 0.8, Hue: 0.2, P: 0.8}
	}
	scaleMin := 0.08
	if o.ScaleMin > 0 {
		scaleMin = o.ScaleMin
	}
	ops := []Op{RandomResizedCrop{H: size, W: size, ScaleMin: scaleMin, ScaleMax: 1, RatioMin: 3.0 / 4, RatioMax: 4.0 / 3}}
	if !o.NoFlip {
		ops = append(ops, HFlip{P: 0.5})
	}
	if !o.NoJitter {
		ops = append(ops, jit)
	}
	ops = append(ops, RandomGrayscale{P: 0.2})
	if !o.NoBlur {
		ops = append(ops, GaussianBlur{Kernel: o.BlurKernel, SigmaMin: 0.1, SigmaMax: 2, P: 0.5})
	}
	if o.Solarize > 0 {
		ops = append(ops, Solarize{Threshold: o.SolarizeThreshold, P: o.Solarize})
	}
	return Pipeline{Ops: append(ops, norm)}
}
