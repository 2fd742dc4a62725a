package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fakeRun writes a run directory with a summary and one metrics line per value of top1.
func fakeRun(t *testing.T, dir string, s Summary, top1 ...float64) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i, v := range top1 {
		lines = append(lines, fmt.Sprintf(`{"epoch":%d,"step":%d,"test_top1":%g,"test_top5":%g,"seconds":2.5,"peak_rss_bytes":1000}`,
			i+1, 10*(i+1), v, math.Min(100, v+20)))
	}
	if err := os.WriteFile(filepath.Join(dir, MetricsFile), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.FinalTop1 = top1[len(top1)-1]
	if err := WriteSummary(dir, s); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ptr(v float64) *float64 { return &v }

// fakeRuns: kd on resnet32x4→resnet8x4 with two seeds (70, 72); ifacd2 on that pair (73) and on
// vgg13→vgg8 (65).
func fakeRuns(t *testing.T) string {
	root := t.TempDir()
	base := func(method, label, teacher, student string, seed int64, teacherTop1 float64) Summary {
		return Summary{Method: method, Label: label, Teacher: teacher, Student: student, Seed: seed,
			TeacherTop1: ptr(teacherTop1), PeakRSSBytes: 3 << 30, SecondsPerEpoch: 100 + float64(seed),
			Params: Params{Talk: 8_667_400, Trainable: 1_233_540}}
	}
	fakeRun(t, filepath.Join(root, "kd-0"), base("kd", "kd", "resnet32x4", "resnet8x4", 0, 78), 50, 70)
	fakeRun(t, filepath.Join(root, "kd-1"), base("kd", "kd", "resnet32x4", "resnet8x4", 1, 78), 52, 72)
	s := base("ifacd", "ifacd2", "resnet32x4", "resnet8x4", 0, 78)
	s.Params.Talk = 9_065_224
	fakeRun(t, filepath.Join(root, "ifacd-r"), s, 60, 73)
	s = base("ifacd", "ifacd2", "vgg13", "vgg8", 0, 74)
	s.PeakRSSBytes = 1 << 30
	fakeRun(t, filepath.Join(root, "ifacd-v"), s, 40, 65)
	return root
}

func rowOf(t *testing.T, tb Table, label string) Row {
	t.Helper()
	for _, r := range tb.Rows {
		if r.Label == label {
			return r
		}
	}
	t.Fatalf("%s: no row %q", tb.Name, label)
	return Row{}
}

func TestBuildAveragesSeedsAndPairs(t *testing.T) {
	runs, err := LoadRuns([]string{fakeRuns(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 4 {
		t.Fatalf("%d runs, want 4", len(runs))
	}
	tb := Build(runs)
	acc := tb.Accuracy
	if strings.Join(acc.Columns, ",") != "vgg13→vgg8,resnet32x4→resnet8x4" {
		t.Errorf("columns %v, want the talk's order", acc.Columns)
	}
	var labels []string
	for _, r := range acc.Rows {
		labels = append(labels, r.Label)
	}
	if strings.Join(labels, ",") != "kd,ifacd2,teacher" {
		t.Errorf("rows %v", labels)
	}
	kd := rowOf(t, acc, "kd")
	c := kd.Cells["resnet32x4→resnet8x4"]
	if c.N != 2 || c.Mean != 71 || math.Abs(c.Std-math.Sqrt2) > 1e-12 {
		t.Errorf("kd cell %+v, want mean 71 ± √2 over 2 seeds", c)
	}
	if _, ok := kd.Cells["vgg13→vgg8"]; ok || kd.Avg != 71 || !kd.Partial {
		t.Errorf("kd row %+v: want no vgg cell and a partial average of 71", kd)
	}
	if r := rowOf(t, acc, "ifacd2"); r.Avg != 69 || r.Partial {
		t.Errorf("ifacd2 average %v (partial %v), want (73 + 65)/2 = 69", r.Avg, r.Partial)
	}
	if r := rowOf(t, acc, TeacherRow); r.Cells["vgg13→vgg8"].Mean != 74 || r.Cells["resnet32x4→resnet8x4"].Mean != 78 || r.Avg != 76 {
		t.Errorf("teacher row %+v", r)
	}
	if c := rowOf(t, tb.Memory, "ifacd2").Cells["vgg13→vgg8"]; c.Mean != 1 {
		t.Errorf("memory %v GiB, want 1", c.Mean)
	}
	if c := rowOf(t, tb.Params, "ifacd2").Cells["resnet32x4→resnet8x4"]; math.Abs(c.Mean-9.065224) > 1e-12 {
		t.Errorf("params %v M", c.Mean)
	}
	if c := rowOf(t, tb.Time, "kd").Cells["resnet32x4→resnet8x4"]; c.Mean != 100.5 {
		t.Errorf("time %v s/epoch, want the mean of 100 and 101", c.Mean)
	}

	md := acc.Markdown()
	for _, want := range []string{
		"| method | vgg13→vgg8 | resnet32x4→resnet8x4 | avg |",
		"| kd | – | 71.00 ± 1.41 (n=2) | 71.00* |",
		"| ifacd2 | 65.00 | 73.00 | 69.00 |",
		"| teacher | 74.00 | 78.00 | 76.00 |",
		"mean ± sample standard deviation",
		"* averaged over the pairs",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	var buf bytes.Buffer
	if err := acc.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := "method,vgg13→vgg8,vgg13→vgg8 std,vgg13→vgg8 n,resnet32x4→resnet8x4,resnet32x4→resnet8x4 std,resnet32x4→resnet8x4 n,avg"
	if strings.Join(recs[0], ",") != wantHeader || len(recs) != 4 {
		t.Fatalf("csv:\n%v", recs)
	}
	if strings.Join(recs[1], ",") != "kd,,,,71,"+strconv.FormatFloat(math.Sqrt2, 'g', -1, 64)+",2,71" {
		t.Errorf("csv kd row %v", recs[1])
	}
}

func TestCurvesAverageSeeds(t *testing.T) {
	runs, err := LoadRuns([]string{fakeRuns(t)})
	if err != nil {
		t.Fatal(err)
	}
	cs := Curves(runs, "resnet32x4→resnet8x4")
	if len(cs) != 2 || cs[0].Label != "kd" || cs[1].Label != "ifacd2" {
		t.Fatalf("curves %+v", cs)
	}
	if fmt.Sprint(cs[0].Epochs, cs[0].Top1) != "[1 2] [51 71]" || fmt.Sprint(cs[1].Top1) != "[60 73]" {
		t.Errorf("curves %+v", cs)
	}
}

func TestWriteAllWritesTablesAndPNGs(t *testing.T) {
	runs, err := LoadRuns([]string{fakeRuns(t)})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report")
	w, err := WriteAll(out, runs, Build(runs))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tables.md", "accuracy.csv", "memory.csv", "params.csv", "time.csv", "trainable.csv",
		"final_top1.png", "curves_vgg13-vgg8.png", "curves_resnet32x4-resnet8x4.png"}
	if len(w.Files) != len(want) {
		t.Errorf("wrote %v, want %v", w.Files, want)
	}
	for _, name := range want {
		path := filepath.Join(out, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.HasSuffix(name, ".png") {
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil || img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
				t.Errorf("%s: not a PNG plot (%v)", name, err)
			}
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "tables.md"))
	for _, title := range []string{"Test accuracy", "Peak memory", "Parameters (teacher + student", "Training time", "Trainable parameters"} {
		if !strings.Contains(string(md), title) {
			t.Errorf("tables.md lacks %q", title)
		}
	}
}

func TestLoadRunsErrors(t *testing.T) {
	empty := t.TempDir()
	if _, err := LoadRuns([]string{empty}); err == nil || !strings.Contains(err.Error(), SummaryFile) {
		t.Errorf("empty folder: err = %v", err)
	}
	if _, err := LoadRuns(nil); err == nil {
		t.Error("no paths: no error")
	}
	bad := fakeRun(t, filepath.Join(t.TempDir(), "run"), Summary{Method: "kd", Teacher: "a", Student: "b"}, 1)
	if err := os.WriteFile(filepath.Join(bad, MetricsFile), []byte("{\"epoch\":1}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRuns([]string{bad}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad metrics line: err = %v", err)
	}
	incomplete := filepath.Join(t.TempDir(), "run")
	_ = os.MkdirAll(incomplete, 0o755)
	_ = os.WriteFile(filepath.Join(incomplete, SummaryFile), []byte(`{"method":"kd"}`), 0o644)
	if _, err := LoadRun(incomplete); err == nil || !strings.Contains(err.Error(), "teacher") {
		t.Errorf("summary without teacher: err = %v", err)
	}
}

func TestAccuracies(t *testing.T) {
	ms := []EpochMetrics{{Epoch: 1, TestTop1: ptr(50), TestTop5: ptr(80)}, {Epoch: 2}, {Epoch: 3, TestTop1: ptr(48), TestTop5: ptr(85)}}
	f1, f5, b1, be, b5, ok := Accuracies(ms)
	if !ok || f1 != 48 || f5 != 85 || b1 != 50 || be != 1 || b5 != 85 {
		t.Errorf("Accuracies = %v %v %v %v %v %v", f1, f5, b1, be, b5, ok)
	}
	if _, _, _, _, _, ok := Accuracies([]EpochMetrics{{Epoch: 1}}); ok {
		t.Error("no evaluated epoch reported ok")
	}
}

// fakePretrainRun writes a pretraining run: config.json, metrics.jsonl with the online kNN, and
// the evaluation files.
func fakePretrainRun(t *testing.T, dir, mode string, online []float64, knn, lin string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("config.json", `{"params": {"command": "pretrain vit", "flags": {"Mode": "`+mode+`"}}}`)
	var m strings.Builder
	for i, v := range online {
		fmt.Fprintf(&m, `{"epoch": %d, "seconds": 10.5, "knn_top1": %g}`+"\n", i+1, v)
	}
	write(MetricsFile, m.String())
	if knn != "" {
		write(KNNFile, knn)
	}
	if lin != "" {
		write(LinearFile, lin)
	}
}

func TestPretrainReport(t *testing.T) {
	root := t.TempDir()
	fakePretrainRun(t, filepath.Join(root, "a-lwbyol"), "lwbyol", []float64{0.70, 0.80, 0.85},
		`{"k": 200, "temperature": 0.1, "top1": 0.8612, "extra": [{"k": 20, "temperature": 0.07, "top1": 0.8734}]}`, `{"top1": 0.8755}`)
	fakePretrainRun(t, filepath.Join(root, "b-simclr"), "simclr", []float64{0.6, 0.7}, "", "")
	if err := os.MkdirAll(filepath.Join(root, "not-a-run"), 0o755); err != nil {
		t.Fatal(err)
	}
	runs, rest, err := LoadPretrainRuns([]string{root, filepath.Join(root, "elsewhere")})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || len(rest) != 1 || runs[0].Label != "a-lwbyol" || runs[0].Epochs != 3 || runs[0].TrainSeconds != 31.5 {
		t.Fatalf("runs %+v, rest %v", runs, rest)
	}
	md := PretrainMarkdown(runs)
	for _, want := range []string{"| a-lwbyol | lwbyol | 3 | 86.12 | 87.34 | 87.55 | – | 85.00 | 32 |", "| b-simclr | simclr | 2 | – | – | – | – | 70.00 | 21 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	var csvOut strings.Builder
	if err := WritePretrainCSV(&csvOut, runs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csvOut.String(), "a-lwbyol,lwbyol,3,86.12,87.34,87.55,–,85.00,32") {
		t.Errorf("csv:\n%s", csvOut.String())
	}
	out := filepath.Join(root, "report")
	files, err := WritePretrain(out, runs)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("files %v", files)
	}
	png, err := os.ReadFile(filepath.Join(out, "online-knn.png"))
	if err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("online-knn.png: %d bytes, %v", len(png), err)
	}
	// A broken evaluation file is an error naming it.
	if err := os.WriteFile(filepath.Join(root, "a-lwbyol", KNNFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPretrainRun(filepath.Join(root, "a-lwbyol")); err == nil || !strings.Contains(err.Error(), KNNFile) {
		t.Errorf("broken knn.json: %v", err)
	}
}

// TestPlotsReadRight checks what makes the plots honest: the bars' value axis starts at 0 (and
// leaves room for the labels), an epoch axis has one tick per whole epoch, the pairs are ordered
// the talk's, then RepDistiller's cross-architecture ones, then the rest, and a one-epoch report
// plots (the PNGs were looked at: value labels, legend beside the data).
func TestPlotsReadRight(t *testing.T) {
	_, _, ymin, ymax := groupedBars{values: [][]float64{{27.5, math.NaN()}, {29.1, 31}}, columns: 2}.DataRange()
	if ymin != 0 || ymax < 31*1.1 {
		t.Errorf("bar value range [%v, %v], want [0, > 34.1]", ymin, ymax)
	}
	ticks := epochTicks{}.Ticks(0.5, 1.75)
	if len(ticks) != 1 || ticks[0].Value != 1 || ticks[0].Label != "1" {
		t.Errorf("ticks of a one-epoch axis: %+v", ticks)
	}
	if got := (epochTicks{}).Ticks(0.5, 4.5); len(got) != 4 || got[3].Value != 4 {
		t.Errorf("ticks of a four-epoch axis: %+v", got)
	}
	top := func(v float64) *float64 { return &v }
	mk := func(label, teacher, student string) Run {
		return Run{Summary: Summary{Label: label, Teacher: teacher, Student: student, FinalTop1: 30, TeacherTop1: top(31)},
			Metrics: []EpochMetrics{{Epoch: 1, TestTop1: top(30)}}}
	}
	runs := []Run{mk("kd", "resnet20", "resnet8"), mk("ifacd2", "resnet20", "resnet8"), mk("kd", "vit:nano", "resnet8"),
		mk("kd", "resnet32x4", "shufflev2"), mk("kd", "resnet56", "resnet20")}
	tb := Build(runs)
	want := []string{"resnet56→resnet20", "resnet32x4→shufflev2", "resnet20→resnet8", "vit:nano→resnet8"}
	if !slices.Equal(tb.Accuracy.Columns, want) {
		t.Errorf("columns %v, want %v", tb.Accuracy.Columns, want)
	}
	dir := t.TempDir()
	w, err := WriteAll(dir, runs, tb)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range w.Files {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestMemoryTableSaysWhatWasMeasured: device bytes (XLA runs) are preferred over the RSS, and the
// title and notes name the measure; runs of the host backends keep the RSS table.
func TestMemoryTableSaysWhatWasMeasured(t *testing.T) {
	run := func(method string, rss, dev int64) Run {
		s := Summary{Method: method, Teacher: "resnet32x4", Student: "resnet8x4", PeakRSSBytes: rss}
		if dev > 0 {
			s.DevicePeakBytes, s.DeviceMemoryMeasure = dev, "xla executable"
		}
		return Run{Summary: s}
	}
	const gib = 1 << 30
	host := Build([]Run{run("kd", 3*gib, 0)}).Memory
	if host.Title != "Peak memory (process resident set)" || rowOf(t, host, "kd").Cells["resnet32x4→resnet8x4"].Mean != 3 {
		t.Errorf("host runs: %q %+v", host.Title, host.Rows)
	}
	dev := Build([]Run{run("kd", 3*gib, gib/2), run("ifacd", 3*gib, gib)}).Memory
	if dev.Title != "Peak device memory of a training step" || !strings.Contains(strings.Join(dev.Notes, " "), "xla executable") {
		t.Errorf("device runs: title %q, notes %q", dev.Title, dev.Notes)
	}
	if c := rowOf(t, dev, "kd").Cells["resnet32x4→resnet8x4"]; c.Mean != 0.5 {
		t.Errorf("kd device cell %v GiB, want 0.5 (the device bytes, not the RSS)", c.Mean)
	}
	mixed := Build([]Run{run("kd", 3*gib, 0), run("ifacd", 3*gib, gib)}).Memory
	if !strings.Contains(mixed.Title, "else process resident set") || !strings.Contains(strings.Join(mixed.Notes, " "), "1 of the 2 runs ran on a host backend") {
		t.Errorf("mixed runs: title %q, notes %q", mixed.Title, mixed.Notes)
	}
	if c := rowOf(t, mixed, "kd").Cells["resnet32x4→resnet8x4"]; c.Mean != 3 {
		t.Errorf("host run in a mixed table: %v GiB, want its RSS 3", c.Mean)
	}
}
