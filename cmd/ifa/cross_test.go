package main

import (
	stdctx "context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/report"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/runner"
)

// trainTiny trains model for one epoch on the synthetic data and returns its run directory.
func trainTiny(t *testing.T, dataDir, model string, extra ...string) (string, *runner.TrainResult) {
	t.Helper()
	runDir := filepath.Join(t.TempDir(), "teacher")
	args := append([]string{"--out", runDir, "--seed", "1", "train", "--model", model, "--dataset", "fashion-mnist",
		"--data-dir", dataDir, "--epochs", "1", "--batch", "4", "--eval-batch", "6", "--padding", "1"}, extra...)
	cli, app := parseCLI(t, args...)
	res, err := cli.Train.run(stdctx.Background(), app, testutil.Backend())
	if err != nil {
		t.Fatal(err)
	}
	return runDir, res
}

// TestDistillAcrossArchitectures distils a ViT teacher into a resnet8 student (IFACD on the
// teacher's last two blocks, a Transformer Rescaler V2 on the last only) and a resnet8 teacher into
// an MLP-Mixer student (attention transfer on the Mixer's last three blocks against resnet8's three
// stages), one epoch each at 8x8, and checks the summaries; then the refusals: attention between
// three stages and four blocks without a tap choice, a tap choice out of range, a ViT whose patch
// does not divide the images.
func TestDistillAcrossArchitectures(t *testing.T) {
	if !backendTrainsCNNs(t) {
		return
	}
	dataDir := synthFashionMNIST(t, 12, 6, 8)
	vitDir, vitRes := trainTiny(t, dataDir, "vit:nano")
	if vitRes.Record.ViT == nil || vitRes.Record.Name() != "vit:nano" || vitRes.Record.ViT.ImageHeight != 8 {
		t.Fatalf("the ViT teacher's record: %+v", vitRes.Record)
	}
	cnnDir, _ := trainTiny(t, dataDir, "resnet8")
	run := func(teacher, student, method string, extra ...string) (*runner.DistillResult, error) {
		runDir := filepath.Join(t.TempDir(), "distill")
		args := append([]string{"--out", runDir, "--seed", "2", "distill", "--teacher", teacher, "--student", student,
			"--method", method, "--epochs", "1", "--batch", "4", "--eval-batch", "6", "--padding", "1", "--no-teacher-eval"}, extra...)
		cli, app := parseCLI(t, args...)
		return cli.Distill.run(stdctx.Background(), app, testutil.Backend())
	}
	res, err := run(vitDir, "resnet8", "ifacd", "--taps", "last:2", "--ifacd-layers", "3", "--ifacd-feat-dim", "8",
		"--ifacd-rs-block", "none,transformer")
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.Teacher != "vit:nano" || s.Student != "resnet8" || s.Label != "ifacd2" || s.TeacherTaps != "last:2" ||
		s.MethodParams["ifacd_layers"] != 2 || s.Params.Heads == 0 || res.Result.GlobalStep != 3 {
		t.Errorf("vit:nano → resnet8 ifacd: summary %+v", s)
	}
	res, err = run(cnnDir, "mixer:nano", "attention", "--student-taps", "blocks:last:3")
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Summary; s.Teacher != "resnet8" || s.Student != "mixer:nano" || s.StudentTaps != "blocks:last:3" || s.Label != "attention" {
		t.Errorf("resnet8 → mixer:nano attention: summary %+v", s)
	}
	if sum, err := report.ReadSummary(res.RunDir); err != nil || sum.Pair() != "resnet8→mixer:nano" {
		t.Errorf("summary.json: %v, pair %q", err, sum.Pair())
	}
	for _, tc := range []struct {
		teacher, student, method string
		args                     []string
		want                     string
	}{
		{cnnDir, "vit:nano", "attention", nil, "--student-taps"},
		{cnnDir, "vit:nano", "kd", []string{"--student-taps", "last:5"}, "only 4"},
		{cnnDir, "vit:nano", "kd", []string{"--student-taps", "lats:2"}, "--student-taps"},
		{cnnDir, "vit:nano_3", "kd", nil, "not divisible"},
		{vitDir, "resnet8", "hint", []string{"--param", "hint_layer=0"}, "no stem map"},
	} {
		if _, err := run(tc.teacher, tc.student, tc.method, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s → %s %s %q: err = %v, want it to mention %q", filepath.Base(tc.teacher), tc.student, tc.method, tc.args, err, tc.want)
		}
	}
}

// TestTrainLightweightRate: with --lr 0, a ShuffleNet trains at RepDistiller's 0.01, a resnet at 0.05.
func TestTrainLightweightRate(t *testing.T) {
	for model, want := range map[string]float64{"shufflev2": 0.01, "resnet8": 0.05, "vit:nano": 0.05} {
		cli, _ := parseCLI(t, "train", "--model", model, "--dataset", "fashion-mnist")
		rec, err := rundir.ModelNamed(model, 10, rundir.DataSpec{Height: 28, Width: 28, Channels: 1}, "/model")
		if err != nil {
			t.Fatal(err)
		}
		if got := cli.Train.FitConfig(t.TempDir(), 1, rec).Schedule.BaseLR; got != want {
			t.Errorf("%s: base lr %g, want %g", model, got, want)
		}
	}
}
