package main

// Helpers shared by the training and evaluation commands: interrupt handling, run directories,
// datasets and loaders, config.json with the record of the encoder a run's checkpoints hold, and
// rebuilding that encoder from a checkpoint.

import (
	stdctx "context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"syscall"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/eval"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/vit"
)

// interruptContext returns a context cancelled by the first SIGINT (Ctrl-C) or SIGTERM: the
// training loop then finishes its step, writes a checkpoint and returns. A second signal kills the
// process as usual. Call stop when done.
func interruptContext(log zerolog.Logger) (ctx stdctx.Context, stop func()) {
	ctx, stopNotify := signal.NotifyContext(stdctx.Background(), os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// Restore the default behaviour: a second Ctrl-C aborts at once.
			stopNotify()
			log.Warn().Msg("interrupted: finishing the current step and writing a checkpoint (press Ctrl-C again to abort without one)")
		case <-done:
		}
	}()
	return ctx, func() { close(done); stopNotify() }
}

// prepareRunDir returns the run directory of a training command (--out, or runs/<command>-<time>)
// and checks it against resume: a fresh run refuses a directory that already holds checkpoints, and
// resuming needs an explicit --out.
func prepareRunDir(app *App, command string, resume bool) (string, error) {
	if resume && app.Globals.Out == "" {
		return "", errors.New("--resume: give the run directory to continue with --out RUN_DIR")
	}
	dir := app.RunDir(command)
	if !resume {
		ck, err := fit.ListCheckpoints(dir)
		if err != nil {
			return "", err
		}
		if len(ck) > 0 {
			return "", fmt.Errorf("--out %s already holds checkpoints: add --resume to continue that run, or choose another --out", dir)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("run directory %s: %w", dir, err)
	}
	return dir, nil
}

// DataSpec is where a command's images come from and how they are normalised; it is saved in
// config.json so that evaluation sees the data the way training did.
type DataSpec struct {
	// Dataset is a known name (fashion-mnist, mnist, cifar10, cifar100) or an image-folder path.
	Dataset string `json:"dataset"`
	// Dir is where the named dataset was found ("" for the default places).
	Dir string `json:"dir,omitempty"`
	// Height, Width, Channels are the image shape the encoder takes.
	Height   int `json:"height"`
	Width    int `json:"width"`
	Channels int `json:"channels"`
	// Mean and Std are the per-channel normalisation of the test transform.
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
}

// Norm is the normalisation of the test transform.
func (s DataSpec) Norm() data.Normalize { return data.Normalize{Mean: s.Mean, Std: s.Std} }

// openSplit reads one split of a dataset. Any image count is accepted (subsets of the canonical
// files); the files must still be consistent.
func openSplit(name, dir, split string, limit int) (*data.Dataset, error) {
	ds, err := data.Open(name, dir, split, data.WithAnyCount())
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

// openTrainTest reads the train and test splits and returns them with their DataSpec (the
// normalisation of a known dataset, or the train split's own statistics).
func openTrainTest(name, dir string, limitTrain, limitTest int) (train, test *data.Dataset, spec DataSpec, err error) {
	if train, err = openSplit(name, dir, "train", limitTrain); err != nil {
		return nil, nil, spec, fmt.Errorf("--dataset %s: %w", name, err)
	}
	if test, err = openSplit(name, dir, "test", limitTest); err != nil {
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
	spec = DataSpec{Dataset: name, Dir: dir, Height: train.H, Width: train.W, Channels: train.C, Mean: norm.Mean, Std: norm.Std}
	return train, test, spec, nil
}

// evalLoader is an unshuffled, unaugmented loader (the test transform) over ds.
//
// Images smaller than the encoder's input (spec's Height x Width: 28x28 data of a model trained with
// --pad-to-32) are zero-padded to it first, as in training.
func evalLoader(ds *data.Dataset, spec DataSpec, batch, workers int) (*data.ImageLoader, error) {
	pipe := data.TestTransform(spec.Norm())
	if ds.H < spec.Height || ds.W < spec.Width {
		pipe = pipe.PadFirst(spec.Height, spec.Width)
	}
	return data.NewLoader(ds, data.LoaderConfig{BatchSize: batch, Transforms: []data.Pipeline{pipe}, Workers: workers})
}

// Encoder families recorded in config.json.
const (
	FamilyViT = "vit"
	FamilyCNN = "cnn"
)

// EncoderRecord says which encoder a run's checkpoints hold and where its variables live: the
// "model" section of config.json's params. Evaluation commands rebuild the encoder from it.
type EncoderRecord struct {
	// Family is "vit" or "cnn".
	Family string `json:"family"`
	// Scope is the absolute scope of the encoder's variables in the checkpoint (e.g. "/encoder").
	Scope string `json:"scope"`
	// ViT is the ViT architecture (family vit).
	ViT *vit.Config `json:"vit,omitempty"`
	// CNN names a model of the cnn zoo and its classifier width (family cnn).
	CNN *CNNRecord `json:"cnn,omitempty"`
	// Data is the data the encoder was trained on and its test transform.
	Data DataSpec `json:"data"`
}

// CNNRecord identifies a CNN of the zoo (cnn.Get) and the classifier it was built with.
type CNNRecord struct {
	Name       string `json:"name"`
	NumClasses int    `json:"num_classes"`
}

// Validate checks that the record names a buildable encoder.
func (r EncoderRecord) Validate() error {
	switch r.Family {
	case FamilyViT:
		if r.ViT == nil {
			return errors.New("model record: family vit without a vit configuration")
		}
		return r.ViT.Validate()
	case FamilyCNN:
		if r.CNN == nil {
			return errors.New("model record: family cnn without a cnn section")
		}
		_, err := cnn.Get(r.CNN.Name)
		return err
	}
	return fmt.Errorf("model record: unknown encoder family %q (want %s or %s)", r.Family, FamilyViT, FamilyCNN)
}

// Features builds the encoder's graph in ctx's current scope (the record's Scope stripped).
func (r EncoderRecord) Features(ctx *context.Context, images *graph.Node) backbone.Features {
	switch r.Family {
	case FamilyViT:
		m, err := vit.New(*r.ViT)
		if err != nil {
			panic(err)
		}
		return m.Features(ctx, images)
	case FamilyCNN:
		spec, err := cnn.Get(r.CNN.Name)
		if err != nil {
			panic(err)
		}
		return spec.Build(ctx, images, r.CNN.NumClasses)
	}
	panic(fmt.Errorf("model record: unknown encoder family %q", r.Family))
}

// RunParams is what config.json's "params" holds for every ifa training command.
type RunParams struct {
	// Command is the command line's command ("pretrain vit", "train", ...).
	Command string `json:"command"`
	// Model is the encoder the run's checkpoints hold.
	Model EncoderRecord `json:"model"`
	// Flags are the command's flags (its kong struct).
	Flags any `json:"flags"`
}

// writeRunConfig writes config.json. On resume it first checks that the encoder has not changed.
func writeRunConfig(runDir string, params RunParams, cfg fit.Config, resume bool) error {
	if resume {
		old, err := readRunParams(runDir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil && !reflect.DeepEqual(normalizeRecord(old.Model), normalizeRecord(params.Model)) {
			return fmt.Errorf("--resume: the model or data flags differ from the run's %s (%s vs %s)",
				filepath.Join(runDir, fit.ConfigFile), describeRecord(old.Model), describeRecord(params.Model))
		}
	}
	return fit.WriteConfig(runDir, params, cfg)
}

// normalizeRecord makes a record comparable after a JSON round trip.
func normalizeRecord(r EncoderRecord) EncoderRecord {
	b, _ := json.Marshal(r)
	var out EncoderRecord
	_ = json.Unmarshal(b, &out)
	return out
}

func describeRecord(r EncoderRecord) string {
	switch {
	case r.ViT != nil:
		return fmt.Sprintf("vit %s on %s", r.ViT, r.Data.Dataset)
	case r.CNN != nil:
		return fmt.Sprintf("cnn %s (%d classes) on %s", r.CNN.Name, r.CNN.NumClasses, r.Data.Dataset)
	}
	return r.Family
}

// storedParams is the part of config.json the evaluation commands read.
type storedParams struct {
	Params struct {
		Command string        `json:"command"`
		Model   EncoderRecord `json:"model"`
	} `json:"params"`
}

// readRunParams reads the command and the model record of runDir/config.json.
func readRunParams(runDir string) (RunParams, error) {
	path := filepath.Join(runDir, fit.ConfigFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return RunParams{}, err
	}
	var sp storedParams
	if err := json.Unmarshal(raw, &sp); err != nil {
		return RunParams{}, fmt.Errorf("%s: %w", path, err)
	}
	return RunParams{Command: sp.Params.Command, Model: sp.Params.Model}, nil
}

// LoadedEncoder is an encoder rebuilt from a checkpoint, ready for feature extraction.
type LoadedEncoder struct {
	// Checkpoint is the checkpoint file the variables came from; RunDir the run it belongs to.
	Checkpoint, RunDir string
	// Record describes the encoder.
	Record EncoderRecord
	// Context holds the encoder's variables at its root.
	Context *context.Context
}

// loadEncoder resolves a checkpoint file or run directory, reads the encoder record from the run's
// config.json (next to the checkpoints/ folder, or beside the file) and loads the encoder's
// variables.
func loadEncoder(path string) (*LoadedEncoder, error) {
	file, err := fit.ResolveCheckpoint(path)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	var runDir string
	var params RunParams
	candidates := []string{filepath.Dir(file)}
	if filepath.Base(filepath.Dir(file)) == "checkpoints" {
		candidates = []string{filepath.Dir(filepath.Dir(file)), filepath.Dir(file)}
	}
	for _, dir := range candidates {
		params, err = readRunParams(dir)
		if err == nil {
			runDir = dir
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--checkpoint %s: %w", path, err)
		}
	}
	if runDir == "" {
		return nil, fmt.Errorf("--checkpoint %s: no %s in %v says which encoder it holds (ifa writes it in the run directory)",
			path, fit.ConfigFile, candidates)
	}
	rec := params.Model
	if err := rec.Validate(); err != nil {
		return nil, fmt.Errorf("--checkpoint %s: %s: %w", path, filepath.Join(runDir, fit.ConfigFile), err)
	}
	ctx := context.New()
	if _, err := fit.LoadVariables(ctx, file, fit.LoadOptions{From: rec.Scope}); err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	return &LoadedEncoder{Checkpoint: file, RunDir: runDir, Record: rec, Context: ctx}, nil
}

// pooledEncoder is the evaluation feature of a record's encoder: Features.Pooled (a ViT's final
// CLS vector after the shared LayerNorm, or its mean token with --pooling mean; a CNN's final
// pooled feature).
func pooledEncoder(rec EncoderRecord) eval.Encoder {
	return func(ctx *context.Context, images *graph.Node) *graph.Node {
		return rec.Features(ctx, images).Pooled
	}
}

// featureEncoder is the evaluation feature named by an evaluation command's --layers flag: ""
// means Features.Pooled; otherwise the concatenation, in layer order, of the selected per-layer
// vectors (Features.TapVectors), [B, ΣD_l].
func featureEncoder(rec EncoderRecord, layers string) (eval.Encoder, error) {
	if layers == "" {
		return pooledEncoder(rec), nil
	}
	sel, err := backbone.ParseLayerSelect(layers)
	if err != nil {
		return nil, fmt.Errorf("--layers: %w", err)
	}
	return func(ctx *context.Context, images *graph.Node) *graph.Node {
		vecs := rec.Features(ctx, images).TapVectors
		idx, err := sel.Resolve(len(vecs))
		if err != nil {
			panic(fmt.Errorf("--layers %s: %w", layers, err))
		}
		parts := make([]*graph.Node, len(idx))
		for i, l := range idx {
			parts[i] = vecs[l]
		}
		if len(parts) == 1 {
			return parts[0]
		}
		return graph.Concatenate(parts, -1)
	}, nil
}

// evalData opens the train and test splits an evaluation runs on: the record's data unless
// dataset is given, normalised with the record's test transform.
func evalData(rec EncoderRecord, dataset, dir string, limitTrain, limitTest int) (train, test *data.Dataset, spec DataSpec, err error) {
	spec = rec.Data
	if dataset == "" {
		dataset = spec.Dataset
		if dir == "" {
			dir = spec.Dir
		}
	}
	if dataset == "" {
		return nil, nil, spec, errors.New("--dataset: the checkpoint's run does not record its dataset: give --dataset")
	}
	train, test, own, err := openTrainTest(dataset, dir, limitTrain, limitTest)
	if err != nil {
		return nil, nil, spec, err
	}
	if len(spec.Mean) != train.C {
		spec.Mean, spec.Std = own.Mean, own.Std
	}
	// Smaller images are zero-padded to the encoder's input by evalLoader (--pad-to-32 runs).
	if train.H > spec.Height || train.W > spec.Width || train.C != spec.Channels {
		return nil, nil, spec, fmt.Errorf("--dataset %s: images %dx%dx%d, but the encoder takes %dx%dx%d",
			dataset, train.H, train.W, train.C, spec.Height, spec.Width, spec.Channels)
	}
	spec.Dataset, spec.Dir = dataset, dir
	return train, test, spec, nil
}

// extractTrainTest extracts the encoder's features of the train split (the kNN bank / probe
// training set) and of the test split, both under the test transform.
func extractTrainTest(app *App, backend backends.Backend, enc *LoadedEncoder, train, test *data.Dataset, spec DataSpec, batch int, layers string) (bank, queries eval.FeatureSet, err error) {
	fn, err := featureEncoder(enc.Record, layers)
	if err != nil {
		return bank, queries, err
	}
	for i, ds := range []*data.Dataset{train, test} {
		l, err := evalLoader(ds, spec, batch, 0)
		if err != nil {
			return bank, queries, err
		}
		app.Log.Info().Str("split", ds.Split).Int("images", ds.Len()).Msg("extracting features")
		f, err := eval.Extract(backend, enc.Context, fn, l)
		if err != nil {
			return bank, queries, fmt.Errorf("%s %s: %w", ds.Name, ds.Split, err)
		}
		if i == 0 {
			bank = f
		} else {
			queries = f
		}
	}
	return bank, queries, nil
}

// commandBackend returns override when it is set (tests inject the shared test backend, which
// must not be finalised) or a new backend from --backend; release frees what was created.
func commandBackend(app *App, override backends.Backend) (backend backends.Backend, release func(), err error) {
	if override != nil {
		return override, func() {}, nil
	}
	backend, err = app.NewBackend()
	if err != nil {
		return nil, nil, err
	}
	return backend, backend.Finalize, nil
}

// printJSON writes v as one line of JSON to w (standard output when nil).
func printJSON(w io.Writer, v any) error {
	return json.NewEncoder(stdout(w)).Encode(v)
}

// stdout returns w, or os.Stdout when w is nil.
func stdout(w io.Writer) io.Writer {
	if w == nil {
		return os.Stdout
	}
	return w
}
