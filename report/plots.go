package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
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

// PlotCurves draws the test top-1 of every method per epoch for one pair and saves it as a PNG. The
// x axis has a tick per epoch (up to 12, else gonum's) and half an epoch of margin on short runs;
// a run of one or two evaluated epochs also has each point labelled with its value. The legend sits
// right of the plot, never over the data.
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
	leg := plot.NewLegend()
	leg.ThumbnailWidth = 0.4 * vg.Inch
	first, last := math.MaxInt, 0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range curves {
		first, last = min(first, c.Epochs[0]), max(last, c.Epochs[len(c.Epochs)-1])
		for _, v := range c.Top1 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	short := last-first < 2
	for i, c := range curves {
		xys := make(plotter.XYs, len(c.Epochs))
		for k := range c.Epochs {
			xys[k].X, xys[k].Y = float64(c.Epochs[k]), c.Top1[k]
		}
		if err := addCurve(p, &leg, i, c.Label, xys); err != nil {
			return fmt.Errorf("report: plot %s: %w", path, err)
		}
		if short {
			labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: valueLabels(c.Top1, 2)})
			if err != nil {
				return fmt.Errorf("report: plot %s: %w", path, err)
			}
			for k := range labels.TextStyle {
				labels.TextStyle[k].Color = paletteColor(i)
			}
			labels.Offset = vg.Point{X: 6}
			p.Add(labels)
		}
	}
	span := last - first
	if span <= 12 {
		p.X.Tick.Marker = epochTicks{}
		p.X.Min, p.X.Max = float64(first)-0.5, float64(last)+0.5
		if short {
			p.X.Max = float64(last) + 0.75 // room for the value labels
		}
	}
	pad := math.Max(0.5, 0.08*(hi-lo))
	p.Y.Min, p.Y.Max = lo-pad, hi+pad
	return saveWithLegend(p, leg, path, 7, 4.5)
}

// epochTicks marks every whole epoch of the axis.
type epochTicks struct{}

// Ticks implements plot.Ticker.
func (epochTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Ceil(lo); e <= hi; e++ {
		ts = append(ts, plot.Tick{Value: e, Label: fmt.Sprint(int(e))})
	}
	return ts
}

// valueLabels formats values with dec decimals.
func valueLabels(vs []float64, dec int) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strconv.FormatFloat(v, 'f', dec, 64)
	}
	return out
}

// palette: 20 distinguishable colours (the first seven are plotutil's defaults), so that the
// twelve methods of a full report never share one.
var palette = []color.RGBA{
	{241, 90, 96, 255}, {122, 195, 106, 255}, {90, 155, 212, 255}, {250, 167, 91, 255},
	{158, 103, 171, 255}, {206, 112, 88, 255}, {215, 127, 180, 255}, {31, 119, 180, 255},
	{44, 160, 44, 255}, {0, 110, 110, 255}, {230, 190, 0, 255}, {140, 86, 75, 255},
	{127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255}, {255, 127, 14, 255},
	{57, 59, 121, 255}, {99, 121, 57, 255}, {140, 109, 49, 255}, {132, 60, 57, 255},
}

func paletteColor(i int) color.Color { return palette[i%len(palette)] }

// addCurve adds the i-th line with points (colour, dashes and marker by i) and its legend entry.
func addCurve(p *plot.Plot, leg *plot.Legend, i int, label string, xys plotter.XYs) error {
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	line.Color, points.Color = paletteColor(i), paletteColor(i)
	line.Dashes = plotutil.Dashes(i / len(palette))
	points.Shape = plotutil.Shape(i)
	p.Add(line, points)
	leg.Add(label, line, points)
	return nil
}

// PlotFinalBars draws a table (the accuracy table) as grouped bars, one group per pair and one bar
// per method, each labelled with its value; the value axis starts at 0, so bar lengths compare
// truly. The legend sits right of the plot.
func PlotFinalBars(t Table, path string) error {
	if len(t.Rows) == 0 || len(t.Columns) == 0 {
		return fmt.Errorf("report: plot %s: the table is empty", path)
	}
	p := plot.New()
	p.Title.Text = t.Title
	p.Y.Label.Text = t.Unit + " (axis from 0; bars labelled with their value)"
	leg := plot.NewLegend()
	bars := groupedBars{columns: len(t.Columns), decimals: t.Decimals, style: p.Y.Tick.Label}
	bars.style.Rotation = math.Pi / 2
	bars.style.XAlign, bars.style.YAlign = draw.XLeft, draw.YCenter
	for i, r := range t.Rows {
		vals := make([]float64, len(t.Columns))
		for k, col := range t.Columns {
			vals[k] = math.NaN()
			if c, ok := r.Cells[col]; ok {
				vals[k] = c.Mean
			}
		}
		bars.values = append(bars.values, vals)
		leg.Add(r.Label, swatch{paletteColor(i)})
	}
	p.Add(bars)
	p.NominalX(t.Columns...)
	wInch := math.Max(7, 0.25*float64(len(t.Rows)*len(t.Columns))+2)
	return saveWithLegend(p, leg, path, wInch, 4.5)
}

// groupedBars draws values[row][column] as bars from 0, row i's bar at column k centred at
// k + (i − (rows−1)/2)·w with w = 0.8/rows, a value label above each; NaN draws nothing.
type groupedBars struct {
	values   [][]float64
	columns  int
	decimals int
	style    text.Style
}

// Plot implements plot.Plotter.
func (b groupedBars) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	w := 0.8 / float64(len(b.values))
	for i, row := range b.values {
		for k, v := range row {
			if math.IsNaN(v) {
				continue
			}
			x0 := float64(k) - 0.4 + float64(i)*w
			pts := []vg.Point{{X: trX(x0), Y: trY(0)}, {X: trX(x0 + w), Y: trY(0)}, {X: trX(x0 + w), Y: trY(v)}, {X: trX(x0), Y: trY(v)}}
			c.FillPolygon(paletteColor(i), c.ClipPolygonXY(pts))
			at := vg.Point{X: trX(x0 + w/2), Y: trY(math.Max(v, 0)) + 2}
			c.FillText(b.style, at, strconv.FormatFloat(v, 'f', b.decimals, 64))
		}
	}
}

// DataRange implements plot.DataRanger: the columns, and 0 to the largest value with room for the
// labels above it.
func (b groupedBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	ymax = math.Inf(-1)
	for _, row := range b.values {
		for _, v := range row {
			if !math.IsNaN(v) {
				ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
			}
		}
	}
	if math.IsInf(ymax, -1) || ymax <= 0 {
		ymax = 1
	}
	return -0.5, float64(b.columns) - 0.5, ymin, ymax * 1.18
}

// swatch is a legend thumbnail filled with one colour.
type swatch struct{ color color.Color }

// Thumbnail implements plot.Thumbnailer.
func (s swatch) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}}
	c.FillPolygon(s.color, pts)
}

// saveWithLegend draws p with leg in a column of its own on the right and writes the PNG
// atomically.
func saveWithLegend(p *plot.Plot, leg plot.Legend, path string, wInch, hInch float64) error {
	w, h := vg.Length(wInch)*vg.Inch, vg.Length(hInch)*vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	dc.FillPolygon(color.White, []vg.Point{{X: 0, Y: 0}, {X: w, Y: 0}, {X: w, Y: h}, {X: 0, Y: h}})
	legW := leg.Rectangle(dc).Size().X + 12
	p.Draw(draw.Crop(dc, 0, -legW, 0, 0))
	leg.Top, leg.Left = true, true
	leg.YOffs = -0.5 * vg.Inch
	leg.Draw(draw.Crop(dc, w-legW+4, 0, 0, 0))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return fmt.Errorf("report: plot %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := writeAtomic(path, buf.Bytes()); err != nil {
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
