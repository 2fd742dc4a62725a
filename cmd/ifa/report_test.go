package main

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ifa-toolkit/ifa/report"
)

// fakeDistillRun writes a finished run directory: summary.json and two epochs of metrics.
func fakeDistillRun(t *testing.T, dir, method, label string, seed int64, top1 [2]float64, rss int64, secs float64) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	teacher := 72.5
	s := report.Summary{Method: method, Label: label, Teacher: "resnet56", Student: "resnet20", Seed: seed, Epochs: 2,
		FinalTop1: top1[1], TeacherTop1: &teacher, PeakRSSBytes: rss, SecondsPerEpoch: secs,
		Params: report.Params{Talk: 1_140_000, Trainable: 278_324}}
	if err := report.WriteSummary(dir, s); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for e, v := range top1 {
		fmt.Fprintf(&b, "{\"epoch\":%d,\"test_top1\":%g,\"test_top5\":90,\"seconds\":%g}\n", e+1, v, secs)
	}
	if err := os.WriteFile(filepath.Join(dir, report.MetricsFile), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReportTwoRunsOfOneMethod(t *testing.T) {
	root := t.TempDir()
	a := fakeDistillRun(t, filepath.Join(root, "a"), "ifacd", "ifacd2", 0, [2]float64{60, 70}, 2<<30, 30)
	b := fakeDistillRun(t, filepath.Join(root, "b"), "ifacd", "ifacd2", 1, [2]float64{62, 74}, 4<<30, 50)
	out := filepath.Join(t.TempDir(), "report")
	cli, app := parseCLI(t, "--out", out, "report", a, b)
	var stdout bytes.Buffer
	if err := cli.Report.run(app, &stdout); err != nil {
		t.Fatal(err)
	}
	// Two seeds of ifacd2 on resnet56→resnet20: top-1 72 ± 2.83, memory 3 ± 1.41 GiB, 40 ± 14.1 s/epoch.
	for _, want := range []string{
		"| method | resnet56→resnet20 | avg |",
		"| ifacd2 | 72.00 ± 2.83 (n=2) | 72.00 |",
		"| teacher | 72.50 | 72.50 |",
		"| ifacd2 | 3.00 ± 1.41 (n=2) | 3.00 |",
		"| ifacd2 | 40.0 ± 14.1 (n=2) | 40.0 |",
		"| ifacd2 | 1.14 ± 0.00 (n=2) | 1.14 |",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	for _, name := range []string{"tables.md", "accuracy.csv", "memory.csv", "params.csv", "time.csv", "final_top1.png", "curves_resnet56-resnet20.png"} {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.HasSuffix(name, ".png") {
			if _, err := png.Decode(bytes.NewReader(data)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	csvData, _ := os.ReadFile(filepath.Join(out, "accuracy.csv"))
	if !strings.Contains(string(csvData), "ifacd2,72,2.82842712474619") {
		t.Errorf("accuracy.csv:\n%s", csvData)
	}

	// The parent folder works as well, and --format csv prints CSV.
	cli, app = parseCLI(t, "report", "--format", "csv", root)
	stdout.Reset()
	if err := cli.Report.run(app, &stdout); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "method,resnet56→resnet20,resnet56→resnet20 std,resnet56→resnet20 n,avg") {
		t.Errorf("--csv output:\n%s", stdout.String())
	}

	cli, app = parseCLI(t, "report", t.TempDir())
	if err := cli.Report.run(app, &stdout); err == nil || !strings.Contains(err.Error(), "summary.json") {
		t.Errorf("a folder without runs: err = %v", err)
	}
}
