package main

import (
	"fmt"
	"io"

	"github.com/gomlx/gomlx/backends"

	"github.com/ifa-toolkit/ifa/eval"
)

// KnnEvalCmd is the `ifa knn-eval` command: weighted cosine kNN classification (METHODS.md §5.1)
// of a frozen encoder's features, with the training set (test transform) as the bank and the test
// set as the queries.
type KnnEvalCmd struct {
	Checkpoint  string  `help:"Checkpoint file, or run directory (its newest checkpoint), written by an ifa training command." required:"" type:"path"`
	K           int     `name:"k" help:"Number of neighbours." default:"200"`
	Temperature float64 `help:"Temperature T of the exp(similarity/T) votes." default:"0.1"`
	AlsoK20     bool    `name:"also-k20" help:"Also report k=20, T=0.07 (solo-learn's online kNN setting)."`
	Layers      string  `help:"Feature: empty for the encoder's pooled vector (a ViT's last-layer CLS or mean token), or the concatenation of the selected layers' vectors: last:K, all, or indices such as 2,-1." default:""`
	Dataset     string  `help:"Evaluate on this dataset instead of the one the encoder was trained on (same image shape)."`
	DataDir     string  `name:"data-dir" help:"Folder holding the named dataset." type:"path" env:"IFA_DATA_DIR"`
	Batch       int     `help:"Images per feature-extraction batch." default:"256"`
	LimitTrain  int     `name:"limit-train" help:"Use only the first N training images as the bank (0: all)." default:"0"`
	LimitTest   int     `name:"limit-test" help:"Use only the first N test images as queries (0: all)." default:"0"`
	Format      string  `help:"Output: text, or json (one object with top1 and top5 as fractions)." enum:"text,json" default:"text"`

	stdout  io.Writer        // standard output (tests capture it)
	backend backends.Backend // set by tests: the shared test backend
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
		return fmt.Errorf("--k %d: want >= 1", c.K)
	case !(c.Temperature > 0):
		return fmt.Errorf("--temperature %g: want > 0", c.Temperature)
	case c.Batch < 1:
		return fmt.Errorf("--batch %d: want >= 1", c.Batch)
	case c.LimitTrain < 0 || c.LimitTest < 0:
		return fmt.Errorf("--limit-train %d / --limit-test %d: want >= 0", c.LimitTrain, c.LimitTest)
	}
	enc, err := loadEncoder(c.Checkpoint)
	if err != nil {
		return err
	}
	train, test, spec, err := evalData(enc.Record, c.Dataset, c.DataDir, c.LimitTrain, c.LimitTest)
	if err != nil {
		return err
	}
	settings := []eval.KNNSetting{{K: c.K, T: c.Temperature}}
	if c.AlsoK20 {
		settings = append(settings, eval.KNNSetting{K: 20, T: 0.07})
	}
	for _, s := range settings {
		if s.K > train.Len() {
			return fmt.Errorf("--k %d: larger than the bank of %d training images", s.K, train.Len())
		}
	}
	backend, release, err := commandBackend(app, c.backend)
	if err != nil {
		return err
	}
	defer release()
	bank, queries, err := extractTrainTest(app, backend, enc, train, test, spec, c.Batch, c.Layers)
	if err != nil {
		return err
	}
	numClasses := max(train.NumClasses(), test.NumClasses())
	res, err := eval.KNN(backend, bank, queries, eval.KNNOptions{Settings: settings, NumClasses: numClasses})
	if err != nil {
		return err
	}
	out := stdout(c.stdout)
	if c.Format == "json" {
		js := make([]knnJSON, len(res))
		for i, r := range res {
			js[i] = knnJSON{Checkpoint: enc.Checkpoint, Dataset: spec.Dataset, K: r.Setting.K, Temperature: r.Setting.T,
				Top1: r.Top1, Top5: r.Top5, N: r.N, Bank: bank.N}
		}
		first := js[0]
		first.Extra = js[1:]
		return printJSON(out, first)
	}
	fmt.Fprintf(out, "checkpoint: %s (%s)\n", enc.Checkpoint, describeRecord(enc.Record))
	for _, r := range res {
		fmt.Fprintf(out, "kNN %s (bank %d train images, %d test queries): top-1 %.2f%%, top-5 %.2f%%\n",
			r.Setting, bank.N, r.N, 100*r.Top1, 100*r.Top5)
	}
	return nil
}
