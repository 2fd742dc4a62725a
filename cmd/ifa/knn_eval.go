package main

import (
	"fmt"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/eval"
)

// KnnEvalCmd is the `ifa knn-eval` command: weighted cosine kNN classification (METHODS.md §5.1)
// of a frozen encoder's features, with the training set (test transform) as the bank and the test
// set as the queries.
type KnnEvalCmd struct {
	evalInput `embed:""`

	K           int     `name:"k" help:"Number of neighbours." default:"200"`
	Temperature float64 `help:"Temperature T of the exp(similarity/T) votes." default:"0.1"`
	AlsoK20     bool    `name:"also-k20" help:"Also report k=20, T=0.07 (solo-learn's online kNN setting)."`
	Batch       int     `help:"Images per feature-extraction batch." default:"256"`
}

// knnJSON is the --format json output.
type knnJSON struct {
	Checkpoint  string    `json:"checkpoint"`
	Dataset     string    `json:"dataset"`
	K           int       `json:"k"`
	Temperature float64   `json:"temperature"`
	Top1        float64   `json:"top1"`
	Top5        float64   `json:"top5"`
	N           int       `json:"n"`
	Bank        int       `json:"bank"`
	Extra       []knnJSON `json:"extra,omitempty"`
}

// Run implements the command.
func (c *KnnEvalCmd) Run(app *App) error {
	switch {
	case c.K < 1:
		return usagef("--k %d: want >= 1", c.K)
	case !(c.Temperature > 0):
		return usagef("--temperature %g: want > 0", c.Temperature)
	case c.Batch < 1:
		return usagef("--batch %d: want >= 1", c.Batch)
	}
	settings := []eval.KNNSetting{{K: c.K, T: c.Temperature}}
	if c.AlsoK20 {
		settings = append(settings, eval.KNNSetting{K: 20, T: 0.07})
	}
	f, err := c.features(app, c.Batch, func(train *data.Dataset) error {
		for _, s := range settings {
			if s.K > train.Len() {
				return usagef("--k %d: larger than the bank of %d training images", s.K, train.Len())
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer f.Close()
	enc, spec, bank := f.Enc, f.Spec, f.Train
	res, err := eval.KNN(f.Backend, bank, f.Test, eval.KNNOptions{Settings: settings, NumClasses: f.NumClasses})
	if err != nil {
		return err
	}
	out := stdout(c.stdout)
	if c.Format == "json" {
		js := make([]knnJSON, len(res))
		for i, r := range res {
			js[i] = knnJSON{Checkpoint: enc.File, Dataset: spec.Dataset, K: r.Setting.K, Temperature: r.Setting.T,
				Top1: r.Top1, Top5: r.Top5, N: r.N, Bank: bank.N}
		}
		first := js[0]
		first.Extra = js[1:]
		return printJSON(out, first)
	}
	fmt.Fprintf(out, "checkpoint: %s (%s)\n", enc.File, enc.Model)
	for _, r := range res {
		fmt.Fprintf(out, "kNN %s (bank %d train images, %d test queries): top-1 %.2f%%, top-5 %.2f%%\n",
			r.Setting, bank.N, r.N, 100*r.Top1, 100*r.Top5)
	}
	return nil
}
