package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"

	"github.com/ifa-toolkit/ifa/internal/atomicfile"
)

// Pretraining runs (`ifa pretrain vit`) side by side: the evaluations saved in each run directory
// (kNN@200, kNN@20, linear probe) and the online kNN monitor per epoch from metrics.jsonl.

// Files of a pretraining run that the report reads besides config.json and metrics.jsonl: the
// JSON outputs of `ifa knn-eval --also-k20 --format json` and `ifa linear-eval --format json`
// (last-layer features), and optionally of `ifa linear-eval --layers all` (scripts/demo.sh writes
// all three).
const (
	KNNFile       = "knn.json"
	LinearFile    = "linear.json"
	LinearAllFile = "linear-all.json"
)

// pretrainCommand is config.json's params.command of a pretraining run.
const pretrainCommand = "pretrain vit"

// OnlinePoint is one epoch of the online kNN monitor.
type OnlinePoint struct {
	Epoch int
	Top1  float64 // fraction
}

// PretrainRun is one pretraining run and its evaluations (fractions; nil when not evaluated).
type PretrainRun struct {
	Dir, Label, Method               string
	KNN200, KNN20, Linear, LinearAll *float64
	Epochs                           int
	TrainSeconds                     float64
	Online                           []OnlinePoint
}

// IsPretrainRun reports whether dir holds a config.json written by `ifa pretrain vit`.
func IsPretrainRun(dir string) bool {
	var cfg struct {
		Params struct {
			Command string `json:"command"`
		} `json:"params"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	return err == nil && json.Unmarshal(raw, &cfg) == nil && cfg.Params.Command == pretrainCommand
}

// LoadPretrainRun reads a pretraining run: its method (config.json), its per-epoch metrics and the
// evaluation files that exist.
func LoadPretrainRun(dir string) (PretrainRun, error) {
	r := PretrainRun{Dir: dir, Label: filepath.Base(filepath.Clean(dir))}
	var cfg struct {
		Params struct {
			Command string         `json:"command"`
			Flags   map[string]any `json:"flags"`
		} `json:"params"`
	}
	path := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("report: %w", err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return r, fmt.Errorf("report: %s: %w", path, err)
	}
	if cfg.Params.Command != pretrainCommand {
		return r, fmt.Errorf("report: %s: command %q, not %q", path, cfg.Params.Command, pretrainCommand)
	}
	method, _ := cfg.Params.Flags["Mode"].(string)
	if crops, _ := cfg.Params.Flags["Crops"].(string); crops != "" {
		method += " crops " + crops
	}
	r.Method = method
	if err := r.readMetrics(filepath.Join(dir, MetricsFile)); err != nil {
		return r, err
	}
	var knn struct {
		K           int     `json:"k"`
		Temperature float64 `json:"temperature"`
		Top1        float64 `json:"top1"`
		Extra       []struct {
			K           int     `json:"k"`
			Temperature float64 `json:"temperature"`
			Top1        float64 `json:"top1"`
		} `json:"extra"`
	}
	if ok, err := readJSON(filepath.Join(dir, KNNFile), &knn); err != nil {
		return r, err
	} else if ok {
		settle := func(k int, t, top1 float64) {
			switch {
			case k == 200 && t == 0.1:
				r.KNN200 = &top1
			case k == 20 && t == 0.07:
				r.KNN20 = &top1
			}
		}
		settle(knn.K, knn.Temperature, knn.Top1)
		for _, e := range knn.Extra {
			settle(e.K, e.Temperature, e.Top1)
		}
	}
	for _, f := range []struct {
		name string
		dst  **float64
	}{{LinearFile, &r.Linear}, {LinearAllFile, &r.LinearAll}} {
		var lin struct {
			Top1 *float64 `json:"top1"`
		}
		ok, err := readJSON(filepath.Join(dir, f.name), &lin)
		if err != nil {
			return r, err
		}
		if ok && lin.Top1 != nil {
			*f.dst = lin.Top1
		}
	}
	return r, nil
}

// readMetrics reads the epochs, the training time and the online kNN of metrics.jsonl.
func (r *PretrainRun) readMetrics(path string) error {
	err := eachJSONLine(path, func(line []byte) error {
		var m struct {
			Epoch   int      `json:"epoch"`
			Seconds float64  `json:"seconds"`
			KNN     *float64 `json:"knn_top1"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			return err
		}
		r.Epochs = max(r.Epochs, m.Epoch)
		r.TrainSeconds += m.Seconds
		if m.KNN != nil {
			r.Online = append(r.Online, OnlinePoint{Epoch: m.Epoch, Top1: *m.KNN})
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil // an untrained encoder (--epochs 0) has no metrics
	}
	if err != nil {
		return err
	}
	sort.SliceStable(r.Online, func(i, j int) bool { return r.Online[i].Epoch < r.Online[j].Epoch })
	return nil
}

// readJSON decodes path into v; ok is false when the file does not exist.
func readJSON(path string, v any) (ok bool, err error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("report: %w", err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("report: %s: %w", path, err)
	}
	return true, nil
}

// LoadPretrainRuns loads the pretraining runs among paths: each path is a run, or a folder whose
// direct sub-folders include runs. It returns the runs (sorted by label) and the paths that are
// neither (for the distillation report).
func LoadPretrainRuns(paths []string) (runs []PretrainRun, rest []string, err error) {
	for _, p := range paths {
		if IsPretrainRun(p) {
			r, err := LoadPretrainRun(p)
			if err != nil {
				return nil, nil, err
			}
			runs = append(runs, r)
			continue
		}
		entries, _ := os.ReadDir(p)
		found := false
		for _, e := range entries {
			sub := filepath.Join(p, e.Name())
			if e.IsDir() && IsPretrainRun(sub) {
				r, err := LoadPretrainRun(sub)
				if err != nil {
					return nil, nil, err
				}
				runs = append(runs, r)
				found = true
			}
		}
		if !found {
			rest = append(rest, p)
		}
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Label < runs[j].Label })
	return runs, rest, nil
}

// pretrainHeader is the pretraining table's header.
var pretrainHeader = []string{"run", "method", "epochs", "kNN@200 (%)", "kNN@20 (%)", "linear (%)", "linear, all layers (%)", "best online kNN (%)", "train time (s)"}

// pretrainRow formats one run's cells.
func pretrainRow(r PretrainRun) []string {
	pct := func(v *float64) string {
		if v == nil {
			return "–"
		}
		return strconv.FormatFloat(100**v, 'f', 2, 64)
	}
	var best *float64
	for _, p := range r.Online {
		if best == nil || p.Top1 > *best {
			v := p.Top1
			best = &v
		}
	}
	return []string{r.Label, r.Method, strconv.Itoa(r.Epochs), pct(r.KNN200), pct(r.KNN20), pct(r.Linear), pct(r.LinearAll),
		pct(best), strconv.FormatFloat(math.Round(r.TrainSeconds), 'f', 0, 64)}
}

// PretrainMarkdown is the runs' table in Markdown: kNN (k=200, T=0.1), kNN (k=20, T=0.07), the
// linear probe on the last layer and on all layers concatenated, the best online kNN and the
// training time.
func PretrainMarkdown(runs []PretrainRun) string {
	var b strings.Builder
	b.WriteString("## Pretraining runs\n\n| " + strings.Join(pretrainHeader, " | ") + " |\n|")
	for range pretrainHeader {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range runs {
		b.WriteString("| " + strings.Join(pretrainRow(r), " | ") + " |\n")
	}
	b.WriteString("\nkNN@200: k = 200, T = 0.1; kNN@20: k = 20, T = 0.07 (" + KNNFile + "); linear: the probe on the last layer's features (" +
		LinearFile + "), all layers: on the layers' vectors concatenated (" + LinearAllFile + "); train time: the epochs' wall time (metrics.jsonl).\n")
	return b.String()
}

// WritePretrainCSV writes the runs' table as CSV.
func WritePretrainCSV(w io.Writer, runs []PretrainRun) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(pretrainHeader); err != nil {
		return err
	}
	for _, r := range runs {
		if err := cw.Write(pretrainRow(r)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// PlotOnlineKNN draws every run's online kNN top-1 per epoch and saves it as a PNG.
func PlotOnlineKNN(runs []PretrainRun, path string) error {
	p := plot.New()
	p.Title.Text = "Online kNN top-1 per epoch"
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "kNN top-1 (%)"
	p.Add(plotter.NewGrid())
	leg := plot.NewLegend()
	n := 0
	for _, r := range runs {
		if len(r.Online) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(r.Online))
		for k, o := range r.Online {
			xys[k].X, xys[k].Y = float64(o.Epoch), 100*o.Top1
		}
		if err := addCurve(p, &leg, n, r.Label+" ("+r.Method+")", xys); err != nil {
			return fmt.Errorf("report: plot %s: %w", path, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("report: plot %s: no run has an online kNN (pretrain with --knn-every N)", path)
	}
	return saveWithLegend(p, leg, path, 8, 4.5)
}

// WritePretrain writes pretrain.md, pretrain.csv and (when a run has an online kNN)
// online-knn.png into dir, and returns the files written.
func WritePretrain(dir string, runs []PretrainRun) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var files []string
	md := filepath.Join(dir, "pretrain.md")
	if err := writeAtomic(md, []byte(PretrainMarkdown(runs))); err != nil {
		return nil, err
	}
	var csvBuf bytes.Buffer
	if err := WritePretrainCSV(&csvBuf, runs); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	csvPath := filepath.Join(dir, "pretrain.csv")
	if err := writeAtomic(csvPath, csvBuf.Bytes()); err != nil {
		return nil, err
	}
	files = append(files, md, csvPath)
	for _, r := range runs {
		if len(r.Online) > 0 {
			png := filepath.Join(dir, "online-knn.png")
			if err := PlotOnlineKNN(runs, png); err != nil {
				return nil, err
			}
			files = append(files, png)
			break
		}
	}
	return files, nil
}

// writeAtomic writes data to path atomically (internal/atomicfile).
func writeAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
