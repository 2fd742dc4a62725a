package report

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Curve is a method's mean test top-1 per epoch over its runs of one pair.
type Curve struct {
	Label string
	// Epochs (1-based) and Top1 (%), aligned; an epoch appears when at least one run evaluated it.
	Epochs []int
	Top1   []float64
}

// Curves returns, for the pair, one curve per method label (sorted like the tables' rows), each
// epoch's value averaged over the runs that evaluated it.
func Curves(runs []Run, pair string) []Curve {
	sums := map[string]map[int][2]float64{} // label → epoch → (sum, count)
	for _, r := range runs {
		if r.Summary.Pair() != pair {
			continue
		}
		l := r.Summary.RowLabel()
		if sums[l] == nil {
			sums[l] = map[int][2]float64{}
		}
		for _, m := range r.Metrics {
			if m.TestTop1 != nil {
				s := sums[l][m.Epoch]
				sums[l][m.Epoch] = [2]float64{s[0] + *m.TestTop1, s[1] + 1}
			}
		}
	}
	t := Table{}
	for l := range sums {
		t.Rows = append(t.Rows, Row{Label: l})
	}
	finish(&t)
	var out []Curve
	for _, r := range t.Rows {
		c := Curve{Label: r.Label}
		for e := range sums[r.Label] {
			c.Epochs = append(c.Epochs, e)
		}
		sort.Ints(c.Epochs)
		for _, e := range c.Epochs {
			s := sums[r.Label][e]
			c.Top1 = append(c.Top1, s[0]/s[1])
		}
		if len(c.Epochs) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// fileStem turns a pair name into a file-name part: "resnet32x4→resnet8x4" → "resnet32x4-resnet8x4".
func fileStem(s string) string {
	s = strings.ReplaceAll(s, "→", "-")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// PlotCurves draws the test top-1 of every method per epoch for one pair and saves it as a PNG.
func PlotCurves(runs []Run, pair, path string) error {
	curves := Curves(runs, pair)
	if len(curves) == 0 {
		return fmt.Errorf("report: plot %s: no evaluated epochs for %s", path, pair)
	}
	p := plot.New()
	p.Title.Text = "Test top-1 per epoch: " + pair
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "test top-1 (%)"
	p.Add(plotter.NewGrid())
	for i, c := range curves {
		xys := make(plotter.XYs, len(c.Epochs))
		for k := range c.Epochs {
			xys[k].X, xys[k].Y = float64(c.Epochs[k]), c.Top1[k]
		}
		if err := addCurve(p, i, c.Label, xys); err != nil {
			return fmt.Errorf("report: plot %s: %w", path, err)
		}
	}
	p.Legend.Top = false
	p.Legend.Left = false
	return save(p, path, 7, 4.5)
}

// addCurve adds the i-th line with points (colour, dashes and marker by i) and its legend entry.
func addCurve(p *plot.Plot, i int, label string, xys plotter.XYs) error {
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
	line.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors))
	points.Shape = plotutil.Shape(i)
	p.Add(line, points)
	p.Legend.Add(label, line, points)
	return nil
}

// PlotFinalBars draws the accuracy table as grouped bars (one group per pair, one bar per method)
// and saves it as a PNG.
func PlotFinalBars(t Table, path string) error {
	if len(t.Rows) == 0 || len(t.Columns) == 0 {
		return fmt.Errorf("report: plot %s: the table is empty", path)
	}
	p := plot.New()
	p.Title.Text = t.Title
	p.Y.Label.Text = t.Unit
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range t.Rows {
		for _, c := range r.Cells {
			lo, hi = math.Min(lo, c.Mean), math.Max(hi, c.Mean)
		}
	}
	wInch := math.Max(7, 1.6*float64(len(t.Columns)))
	// Each group of bars fills 80% of its column's share of the (roughly 90% usable) width.
	group := 0.8 * 0.9 * wInch * 72 / float64(len(t.Columns))
	width := vg.Points(group / float64(len(t.Rows)))
	for i, r := range t.Rows {
		vals := make(plotter.Values, len(t.Columns))
		for k, col := range t.Columns {
			if c, ok := r.Cells[col]; ok {
				vals[k] = c.Mean
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return fmt.Errorf("report: plot %s: %s: %w", path, r.Label, err)
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(float64(i)-float64(len(t.Rows)-1)/2) * width
		p.Add(bars)
		p.Legend.Add(r.Label, bars)
	}
	p.NominalX(t.Columns...)
	p.X.Min, p.X.Max = -0.5, float64(len(t.Columns))-0.5
	// Zoom on the differences (close accuracies are otherwise indistinguishable) and leave room
	// above the bars for the legend.
	if lo > 10 {
		p.Y.Min = math.Floor(lo - 5)
	}
	p.Y.Max = hi + 0.12*float64(len(t.Rows)+1)*(hi-p.Y.Min)
	p.Legend.Top = true
	return save(p, path, wInch, 4.5)
}

func save(p *plot.Plot, path string, wInch, hInch float64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := p.Save(vg.Length(wInch)*vg.Inch, vg.Length(hInch)*vg.Inch, path); err != nil {
		return fmt.Errorf("report: plot %s: %w", path, err)
	}
	return nil
}

// Written lists the files WriteAll wrote.
type Written struct {
	Files []string
}

// WriteAll writes into dir: tables.md (every table), <name>.csv per table, final_top1.png (the
// accuracy bars) and curves_<teacher>-<student>.png per pair.
func WriteAll(dir string, runs []Run, t Tables) (Written, error) {
	var w Written
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return w, fmt.Errorf("report: %w", err)
	}
	md := filepath.Join(dir, "tables.md")
	if err := os.WriteFile(md, []byte(t.Markdown()), 0o644); err != nil {
		return w, fmt.Errorf("report: %w", err)
	}
	w.Files = append(w.Files, md)
	for _, tb := range t.All() {
		path := filepath.Join(dir, tb.Name+".csv")
		f, err := os.Create(path)
		if err != nil {
			return w, fmt.Errorf("report: %w", err)
		}
		err = tb.WriteCSV(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return w, fmt.Errorf("report: %s: %w", path, err)
		}
		w.Files = append(w.Files, path)
	}
	bars := filepath.Join(dir, "final_top1.png")
	if err := PlotFinalBars(t.Accuracy, bars); err != nil {
		return w, err
	}
	w.Files = append(w.Files, bars)
	for _, pair := range t.Accuracy.Columns {
		path := filepath.Join(dir, "curves_"+fileStem(pair)+".png")
		if len(Curves(runs, pair)) == 0 {
			continue
		}
		if err := PlotCurves(runs, pair, path); err != nil {
			return w, err
		}
		w.Files = append(w.Files, path)
	}
	return w, nil
}
