package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// TalkPairs returns the teacher → student pairs of the talk's tables, in its column order
// (METHODS.md §9: A to F).
func TalkPairs() []string {
	return []string{
		"wrn_40_2→wrn_16_2", "wrn_40_2→wrn_40_1", "vgg13→vgg8",
		"resnet56→resnet20", "resnet32x4→resnet8x4", "resnet110→resnet20",
	}
}

// CrossPairs returns RepDistiller's cross-architecture teacher → student pairs (its second table),
// which the report's columns list after TalkPairs.
func CrossPairs() []string {
	return []string{
		"vgg13→mobilenetv2", "resnet50→mobilenetv2", "resnet50→vgg8",
		"resnet32x4→shufflev1", "resnet32x4→shufflev2", "wrn_40_2→shufflev1",
	}
}

// TeacherRow is the label of the accuracy table's row of teacher accuracies.
const TeacherRow = "teacher"

// Cell is the mean and sample standard deviation of the N runs (seeds) of one method and pair.
type Cell struct {
	Mean, Std float64
	N         int
}

// newCell summarises values (at least one).
func newCell(values []float64) Cell {
	c := Cell{N: len(values)}
	for _, v := range values {
		c.Mean += v
	}
	c.Mean /= float64(c.N)
	if c.N > 1 {
		ss := 0.0
		for _, v := range values {
			ss += (v - c.Mean) * (v - c.Mean)
		}
		c.Std = math.Sqrt(ss / float64(c.N-1))
	}
	return c
}

// Row is one method's cells by pair, and the average of its cell means.
type Row struct {
	Label string
	Cells map[string]Cell
	// Avg is the mean of the cell means over the pairs present; Partial reports that some
	// columns of the table are missing from it.
	Avg     float64
	Partial bool
}

// Table is one of the report's tables: rows = methods, columns = teacher → student pairs.
type Table struct {
	// Name is the file stem (accuracy, memory, params, time); Title and Unit describe the values.
	Name, Title, Unit string
	// Decimals used to print the values.
	Decimals int
	Columns  []string
	Rows     []Row
	// Notes are printed under the Markdown table.
	Notes []string
}

// Tables are the talk's four tables and the plain parameter count.
type Tables struct {
	Accuracy, Memory, Params, Time, Trainable Table
}

// All returns the tables in report order.
func (t Tables) All() []Table { return []Table{t.Accuracy, t.Memory, t.Params, t.Time, t.Trainable} }

// metric extracts one value from a run; ok false skips the run.
type metric func(s Summary) (v float64, ok bool)

// Build groups the runs by method label (rows) and pair (columns) and averages the runs of each
// cell (several seeds): final test top-1 (%), peak memory (GiB), parameters in the talk's
// convention (M), seconds per epoch, and trainable parameters (student + heads, M). The accuracy
// table gets a teacher row from the teachers' measured accuracy, each teacher checkpoint counted
// once per pair.
func Build(runs []Run) Tables {
	cols := columns(runs)
	seeds := false
	count := map[[2]string]int{}
	for _, r := range runs {
		k := [2]string{r.Summary.RowLabel(), r.Summary.Pair()}
		count[k]++
		seeds = seeds || count[k] > 1
	}
	var seedNote []string
	if seeds {
		seedNote = []string{"Cells with several runs (seeds) show mean ± sample standard deviation."}
	}
	mk := func(name, title, unit string, dec int, m metric, notes ...string) Table {
		t := Table{Name: name, Title: title, Unit: unit, Decimals: dec, Columns: cols, Rows: cells(runs, m)}
		t.Notes = append(append(t.Notes, notes...), seedNote...)
		finish(&t)
		return t
	}
	acc := mk("accuracy", "Test accuracy (top-1, last epoch)", "%", 2,
		func(s Summary) (float64, bool) { return s.FinalTop1, true })
	// The teacher row counts each teacher checkpoint once per pair, however many runs used it.
	tcells := map[string][]float64{}
	seen := map[[2]string]bool{}
	for _, r := range runs {
		s := r.Summary
		if k := [2]string{s.Pair(), s.TeacherCheckpoint}; s.TeacherTop1 != nil && !seen[k] {
			seen[k] = true
			tcells[s.Pair()] = append(tcells[s.Pair()], *s.TeacherTop1)
		}
	}
	if len(tcells) > 0 {
		row := Row{Label: TeacherRow, Cells: map[string]Cell{}}
		for p, v := range tcells {
			row.Cells[p] = newCell(v)
		}
		acc.Rows = append(acc.Rows, row)
		finish(&acc)
	}
	return Tables{
		Accuracy: acc,
		Memory:   memoryTable(runs, mk),
		Params: mk("params", "Parameters (teacher + student + method heads, heads counted twice as in the talk)", "M", 2,
			func(s Summary) (float64, bool) { return float64(s.Params.Talk) / 1e6, s.Params.Talk > 0 }),
		Time: mk("time", "Training time per epoch (training and evaluation)", "s", 1,
			func(s Summary) (float64, bool) { return s.SecondsPerEpoch, s.SecondsPerEpoch > 0 },
			"The talk reports hours for 240 epochs: multiply by 240/3600."),
		Trainable: mk("trainable", "Trainable parameters (student + method heads, each counted once)", "M", 3,
			func(s Summary) (float64, bool) { return float64(s.Params.Trainable) / 1e6, s.Params.Trainable > 0 }),
	}
}

// columns returns the pairs present: the talk's first (in its order), then RepDistiller's
// cross-architecture pairs (in its order), then the others sorted.
func columns(runs []Run) []string {
	present := map[string]bool{}
	for _, r := range runs {
		present[r.Summary.Pair()] = true
	}
	var out, rest []string
	for _, p := range append(TalkPairs(), CrossPairs()...) {
		if present[p] {
			out = append(out, p)
			delete(present, p)
		}
	}
	for p := range present {
		rest = append(rest, p)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// cells groups runs into rows by label, each cell averaging its runs' values.
func cells(runs []Run, m metric) []Row {
	values := map[string]map[string][]float64{}
	for _, r := range runs {
		v, ok := m(r.Summary)
		if !ok {
			continue
		}
		l := r.Summary.RowLabel()
		if values[l] == nil {
			values[l] = map[string][]float64{}
		}
		values[l][r.Summary.Pair()] = append(values[l][r.Summary.Pair()], v)
	}
	var rows []Row
	for l, byPair := range values {
		row := Row{Label: l, Cells: map[string]Cell{}}
		for p, vs := range byPair {
			row.Cells[p] = newCell(vs)
		}
		rows = append(rows, row)
	}
	return rows
}

// finish sorts the rows (baselines alphabetically, then ifacd variants, then the teacher) and
// computes the averages.
func finish(t *Table) {
	rank := func(l string) int {
		switch {
		case l == TeacherRow:
			return 2
		case strings.HasPrefix(l, "ifacd"):
			return 1
		}
		return 0
	}
	sort.SliceStable(t.Rows, func(i, j int) bool {
		a, b := t.Rows[i].Label, t.Rows[j].Label
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		return a < b
	})
	for i := range t.Rows {
		r := &t.Rows[i]
		sum, n := 0.0, 0
		for _, c := range t.Columns {
			if cell, ok := r.Cells[c]; ok {
				sum += cell.Mean
				n++
			}
		}
		r.Avg, r.Partial = math.NaN(), n < len(t.Columns)
		if n > 0 {
			r.Avg = sum / float64(n)
		}
	}
}

func (t Table) format(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', t.Decimals, 64)
}

// Markdown renders the table with a title line, the pairs as columns and an average column.
func (t Table) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s (%s)\n\n", t.Title, t.Unit)
	b.WriteString("| method |")
	for _, c := range t.Columns {
		fmt.Fprintf(&b, " %s |", c)
	}
	b.WriteString(" avg |\n|---|")
	for range t.Columns {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	partial := false
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "| %s |", r.Label)
		for _, c := range t.Columns {
			cell, ok := r.Cells[c]
			switch {
			case !ok:
				b.WriteString(" – |")
			case cell.N > 1:
				fmt.Fprintf(&b, " %s ± %s (n=%d) |", t.format(cell.Mean), t.format(cell.Std), cell.N)
			default:
				fmt.Fprintf(&b, " %s |", t.format(cell.Mean))
			}
		}
		mark := ""
		if r.Partial && !math.IsNaN(r.Avg) {
			mark, partial = "*", true
		}
		fmt.Fprintf(&b, " %s%s |\n", t.format(r.Avg), mark)
	}
	notes := t.Notes
	if partial {
		notes = append(slices.Clone(notes), "* averaged over the pairs the method was run on.")
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "%s\n", n)
		}
	}
	return b.String()
}

// WriteCSV writes the table: a header "method", then for every pair "<pair>", "<pair> std" and
// "<pair> n", then "avg"; one line per row. Missing cells are empty; values carry full precision.
func (t Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	header := []string{"method"}
	for _, c := range t.Columns {
		header = append(header, c, c+" std", c+" n")
	}
	if err := cw.Write(append(header, "avg")); err != nil {
		return err
	}
	f := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	for _, r := range t.Rows {
		rec := []string{r.Label}
		for _, c := range t.Columns {
			if cell, ok := r.Cells[c]; ok {
				rec = append(rec, f(cell.Mean), f(cell.Std), strconv.Itoa(cell.N))
			} else {
				rec = append(rec, "", "", "")
			}
		}
		if err := cw.Write(append(rec, f(r.Avg))); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Markdown renders every table, separated by blank lines.
func (t Tables) Markdown() string {
	parts := make([]string, 0, 5)
	for _, tb := range t.All() {
		parts = append(parts, tb.Markdown())
	}
	return strings.Join(parts, "\n")
}

// memoryTable is the peak-memory table. Runs on an XLA backend carry the device bytes their
// training step needs (DevicePeakBytes, read from the compiled executable, as PyTorch's
// max_memory_allocated counts tensors); runs on the host backends the process's peak RSS. The
// title and notes say which measure the cells hold.
func memoryTable(runs []Run, mk func(name, title, unit string, dec int, m metric, notes ...string) Table) Table {
	var device, host int
	measure := ""
	for _, r := range runs {
		if r.Summary.DevicePeakBytes > 0 {
			device++
			measure = r.Summary.DeviceMemoryMeasure
		} else if r.Summary.PeakRSSBytes > 0 {
			host++
		}
	}
	rss := func(s Summary) (float64, bool) { return float64(s.PeakRSSBytes) / (1 << 30), s.PeakRSSBytes > 0 }
	if device == 0 {
		return mk("memory", "Peak memory (process resident set)", "GiB", 2, rss,
			"On the CPU backend this is the process's peak RSS (the talk reports peak GPU memory).")
	}
	dev := func(s Summary) (float64, bool) {
		if s.DevicePeakBytes > 0 {
			return float64(s.DevicePeakBytes) / (1 << 30), true
		}
		return rss(s)
	}
	notes := []string{"Device memory of the training step (" + measure + "): tensors only, like PyTorch's " +
		"torch.cuda.max_memory_allocated; no CUDA context or allocator pool."}
	title := "Peak device memory of a training step"
	if host > 0 {
		title = "Peak memory (device step where measured, else process resident set)"
		notes = append(notes, fmt.Sprintf("%d of the %d runs ran on a host backend: their cells are the process's peak RSS.", host, device+host))
	}
	return mk("memory", title, "GiB", 2, dev, notes...)
}
