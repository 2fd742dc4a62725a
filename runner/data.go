package runner

import (
	"fmt"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/rundir"
)

// openSplit reads one split of a dataset. Any image count is accepted (subsets of the canonical
// files); the files must still be consistent.
func openSplit(name, dir, split string, limit int, opts ...data.Option) (*data.Dataset, error) {
	ds, err := data.Open(name, dir, split, append([]data.Option{data.WithAnyCount()}, opts...)...)
	if err != nil {
		return nil, err
	}
	if limit > 0 && limit < ds.Len() {
		ds = subset(ds, limit)
	}
	return ds, nil
}

// subset returns the first n images of ds (sharing its memory).
func subset(ds *data.Dataset, n int) *data.Dataset {
	sub := *ds
	sub.Images = ds.Images[:n*ds.ImageSize()]
	sub.Labels = ds.Labels[:n]
	return &sub
}

// OpenTrainTest reads the train and test splits of dataset name (a known dataset in dir, or an
// image folder), each cut to its first limitTrain / limitTest images when > 0, and returns them
// with their rundir.DataSpec (the normalisation of a known dataset, or the train split's own
// statistics). Errors name the --dataset flag.
func OpenTrainTest(name, dir string, limitTrain, limitTest int) (train, test *data.Dataset, spec rundir.DataSpec, err error) {
	return OpenTrainTestCrop(name, dir, limitTrain, limitTest, 0)
}

// OpenTrainTestCrop is OpenTrainTest for the image-folder recipe of crop size crop (> 0): the
// folder is decoded at data.FolderStoreSize(crop) and the spec records the crop as the model's
// input; 0 is OpenTrainTest.
func OpenTrainTestCrop(name, dir string, limitTrain, limitTest, crop int) (train, test *data.Dataset, spec rundir.DataSpec, err error) {
	var opts []data.Option
	if crop > 0 {
		if _, known := data.NormFor(name); known {
			return nil, nil, spec, Usagef("--image-size %d: only for image folders (--dataset %s has its own size)", crop, name)
		}
		store := data.FolderStoreSize(crop)
		opts = append(opts, data.WithImageSize(store, store))
	}
	if train, err = openSplit(name, dir, "train", limitTrain, opts...); err != nil {
		return nil, nil, spec, fmt.Errorf("--dataset %s: %w", name, err)
	}
	if test, err = openSplit(name, dir, "test", limitTest, opts...); err != nil {
		return nil, nil, spec, fmt.Errorf("--dataset %s: %w", name, err)
	}
	if train.H != test.H || train.W != test.W || train.C != test.C {
		return nil, nil, spec, fmt.Errorf("--dataset %s: train images %dx%dx%d, test images %dx%dx%d", name,
			train.H, train.W, train.C, test.H, test.W, test.C)
	}
	norm, ok := data.NormFor(name)
	if !ok || len(norm.Mean) != train.C {
		norm = data.NormFromStats(train.ChannelStats())
	}
	spec = rundir.DataSpec{Dataset: name, Dir: dir, Height: train.H, Width: train.W, Channels: train.C, Mean: norm.Mean, Std: norm.Std}
	if crop > 0 {
		spec.Height, spec.Width, spec.Crop = crop, crop, crop
	}
	return train, test, spec, nil
}

// EvalLoader is an unshuffled, unaugmented loader (the test transform) over ds.
//
// Images smaller than the encoder's input (spec's Height x Width: 28x28 data of a model trained with
// --pad-to-32) are zero-padded to it first, as in training.
func EvalLoader(ds *data.Dataset, spec rundir.DataSpec, batch, workers int) (*data.ImageLoader, error) {
	pipe := data.TestTransform(spec.Norm())
	if spec.Crop > 0 {
		_, pipe = data.FolderRecipe(spec.Crop, spec.Norm())
	} else if ds.H < spec.Height || ds.W < spec.Width {
		pipe = pipe.PadFirst(spec.Height, spec.Width)
	}
	return data.NewLoader(ds, data.LoaderConfig{BatchSize: batch, Transforms: []data.Pipeline{pipe}, Workers: workers})
}
