package main

import (
	"fmt"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/eval"
)

// LinearEvalCmd is the `ifa linear-eval` command: a linear classifier trained on the frozen
// encoder's features of the training set (test transform, extracted once) and scored on the test
// set (METHODS.md §5.2).
type LinearEvalCmd struct {
	evalInput `embed:""`

	Epochs      int     `help:"Probe training epochs over the training features (default: lightly's SimCLR linear evaluation, METHODS.md §5.2)." default:"90"`
	LR          float64 `name:"lr" help:"Initial learning rate of the probe's SGD (half-cosine to 0, per step)." default:"0.1"`
	Momentum    float64 `help:"SGD momentum of the probe (0: plain SGD)." default:"0.9"`
	WeightDecay float64 `name:"weight-decay" help:"Weight decay of the probe's weights." default:"0"`
	Batch       int     `help:"Probe batch size (also the feature-extraction batch)." default:"256"`
	Norm        string  `help:"Feature preprocessing: standardize (train-set mean/std per feature), l2 or none." enum:"standardize,l2,none" default:"standardize"`
}

// linearJSON is the --format json output.
type linearJSON struct {
	Checkpoint string  `json:"checkpoint"`
	Dataset    string  `json:"dataset"`
	Layers     string  `json:"layers"` // the feature: "" for the last layer's pooled vector (--layers)
	Top1       float64 `json:"top1"`
	Top5       float64 `json:"top5"`
	N          int     `json:"n"`
	TrainTop1  float64 `json:"train_top1"`
	TrainN     int     `json:"train_n"`
	Epochs     int     `json:"epochs"`
	FinalLoss  float64 `json:"final_loss"`
}

// Run implements the command.
func (c *LinearEvalCmd) Run(app *App) error {
	switch {
	case c.Epochs < 1:
		return usagef("--epochs %d: want >= 1", c.Epochs)
	case !(c.LR > 0):
		return usagef("--lr %g: want > 0", c.LR)
	case c.Momentum < 0 || c.Momentum >= 1:
		return usagef("--momentum %g: want in [0, 1)", c.Momentum)
	case c.WeightDecay < 0:
		return usagef("--weight-decay %g: want >= 0", c.WeightDecay)
	case c.Batch < 1:
		return usagef("--batch %d: want >= 1", c.Batch)
	}
	f, err := c.features(app, c.Batch, func(train *data.Dataset) error {
		if c.Batch > train.Len() {
			return usagef("--batch %d: larger than the %d training images", c.Batch, train.Len())
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer f.Close()
	enc, spec, trainF, testF := f.Enc, f.Spec, f.Train, f.Test
	app.Log.Info().Int("features", trainF.D).Int("epochs", c.Epochs).Msg("training the linear probe")
	res, err := eval.LinearProbe(f.Backend, trainF, testF, eval.ProbeOptions{
		Epochs: c.Epochs, BatchSize: c.Batch, LR: c.LR, Momentum: c.Momentum, NoMomentum: c.Momentum == 0,
		WeightDecay: c.WeightDecay, Normalization: eval.Normalization(c.Norm),
		NumClasses: f.NumClasses, Seed: uint64(app.Globals.Seed),
	})
	if err != nil {
		return err
	}
	finalLoss := 0.0
	if n := len(res.EpochLoss); n > 0 {
		finalLoss = res.EpochLoss[n-1]
	}
	out := stdout(c.stdout)
	if c.Format == "json" {
		return printJSON(out, linearJSON{Checkpoint: enc.File, Dataset: spec.Dataset, Layers: c.Layers, Top1: res.Test.Top1, Top5: res.Test.Top5,
			N: res.Test.N, TrainTop1: res.Train.Top1, TrainN: res.Train.N, Epochs: c.Epochs, FinalLoss: finalLoss})
	}
	fmt.Fprintf(out, "checkpoint: %s (%s)\n", enc.File, enc.Model)
	fmt.Fprintf(out, "linear probe (%d epochs on %d train features of width %d): test top-1 %.2f%%, top-5 %.2f%% (n=%d); train top-1 %.2f%%\n",
		c.Epochs, trainF.N, trainF.D, 100*res.Test.Top1, 100*res.Test.Top5, res.Test.N, 100*res.Train.Top1)
	return nil
}
