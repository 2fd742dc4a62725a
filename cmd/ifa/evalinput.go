package main

import (
	"io"

	"github.com/gomlx/gomlx/backends"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/eval"
	"github.com/ifa-toolkit/ifa/rundir"
)

// evalInput holds what both evaluation commands (knn-eval, linear-eval) take: the encoder, the
// data, the feature choice and the output format.
type evalInput struct {
	Checkpoint string `help:"Checkpoint file, or run directory (its newest checkpoint), written by an ifa training command." required:"" type:"path"`
	Encoder    string `help:"Which encoder of a run with a momentum copy (byol, mocov3, lwbyol, lwmocov3) to read: online (the trained one, which the online kNN monitor also reads) or target (its EMA copy)." enum:"online,target" default:"online"`
	Layers     string `help:"Feature: empty for the encoder's pooled vector (a ViT's last-layer CLS or mean token), or the concatenation of the selected layers' vectors: last:K, all, or indices such as 2,-1." default:""`
	Dataset    string `help:"Evaluate on this dataset instead of the one the encoder was trained on (same image shape)."`
	DataDir    string `name:"data-dir" help:"Folder holding the named dataset." type:"path" env:"IFA_DATA_DIR"`
	LimitTrain int    `name:"limit-train" help:"Use only the first N training images (the kNN bank, the probe's training set; 0: all)." default:"0"`
	LimitTest  int    `name:"limit-test" help:"Use only the first N test images (0: all)." default:"0"`
	Format     string `help:"Output: text, or json (one object with top1 and top5 as fractions)." enum:"text,json" default:"text"`

	stdout  io.Writer        // standard output (tests capture it)
	backend backends.Backend // set by tests: the shared test backend
}

// evalFeatures are the frozen encoder's features of the train and test splits.
type evalFeatures struct {
	Enc         *LoadedEncoder
	Spec        rundir.DataSpec
	Train, Test eval.FeatureSet
	NumClasses  int
	Backend     backends.Backend
	release     func()
}

// Close releases the backend the features were computed on.
func (f *evalFeatures) Close() { f.release() }

// features loads the encoder, opens the data (check validates the training split before any
// work starts) and extracts both splits' features in batches of batch images. The caller
// closes the result.
func (in *evalInput) features(app *App, batch int, check func(train *data.Dataset) error) (*evalFeatures, error) {
	if err := firstFailed("", want(in.LimitTrain >= 0, "--limit-train %d: want >= 0 (0: all)", in.LimitTrain),
		want(in.LimitTest >= 0, "--limit-test %d: want >= 0 (0: all)", in.LimitTest)); err != nil {
		return nil, err
	}
	backend, release, err := commandBackend(app, in.backend)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*evalFeatures, error) {
		release()
		return nil, err
	}
	enc, err := loadEncoderBranch(app, backend, in.Checkpoint, in.Encoder)
	if err != nil {
		return fail(err)
	}
	train, test, spec, err := evalData(enc.Model, in.Dataset, in.DataDir, in.LimitTrain, in.LimitTest)
	if err != nil {
		return fail(err)
	}
	if err := check(train); err != nil {
		return fail(err)
	}
	trainF, testF, err := extractTrainTest(app, backend, enc, train, test, spec, batch, in.Layers)
	if err != nil {
		release()
		return nil, err
	}
	return &evalFeatures{Enc: enc, Spec: spec, Train: trainF, Test: testF,
		NumClasses: max(train.NumClasses(), test.NumClasses()), Backend: backend, release: release}, nil
}
