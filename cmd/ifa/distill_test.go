package main

import (
	stdctx "context"
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/report"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/runner"
)

// trainTinyTeacher trains a resnet8 teacher for one epoch on the synthetic data and returns its run
// directory.
func trainTinyTeacher(t *testing.T, dataDir string) string {
	t.Helper()
	runDir := filepath.Join(t.TempDir(), "teacher")
	cli, app := parseCLI(t, "--out", runDir, "--seed", "1", "train", "--model", "resnet8", "--dataset", "fashion-mnist",
		"--data-dir", dataDir, "--epochs", "1", "--batch", "4", "--eval-batch", "6", "--padding", "1")
	if _, err := cli.Train.run(stdctx.Background(), app, testutil.Backend()); err != nil {
		t.Fatal(err)
	}
	return runDir
}

// checkpointVars maps the variables of a run's newest checkpoint by scope and name.
func checkpointVars(t *testing.T, runDir string) map[string]fit.SavedVariable {
	t.Helper()
	file, err := fit.LatestCheckpoint(runDir)
	if err != nil || file == "" {
		t.Fatalf("no checkpoint in %s (%v)", runDir, err)
	}
	ck, err := fit.LoadCheckpoint(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]fit.SavedVariable{}
	for _, v := range ck.Variables {
		out[v.ScopeAndName()] = v
	}
	return out
}

func sameValues(a, b *tensors.Tensor) bool {
	return a.Shape().Equal(b.Shape()) && slices.Equal(tensors.MustCopyFlatData[float32](a), tensors.MustCopyFlatData[float32](b))
}

// TestDistillTinyEndToEnd distils a one-epoch resnet8 teacher into a resnet8 student with kd,
// ifacd and crd for one epoch each, and checks summary.json, metrics.jsonl, the parameter counts,
// that the teacher's weights and batch-norm statistics are untouched, and that the teacher's
// measured accuracy matches its own run's.
func TestDistillTinyEndToEnd(t *testing.T) {
	if !backendTrainsCNNs(t) {
		return
	}
	dataDir := synthFashionMNIST(t, 12, 6, 8)
	teacherDir := trainTinyTeacher(t, dataDir)
	teacherMetrics := readMetrics(t, teacherDir)
	teacherVars := checkpointVars(t, teacherDir)

	// resnet8 with 1 channel and 10 classes: 77,754 parameters; its taps have 32, 64, 64 channels.
	// IFACD heads with feature width 16, last 2 taps: proj_s 64·16+16+32, 2 rescalers 64·64+64+128,
	// proj_t 64·16+16+32.
	const resnet8 = 77_754
	ifacdHeads := int64(2*(64*16+16+32) + 2*(64*64+64+128))
	for _, tc := range []struct {
		method, label string
		args          []string
		heads         int64
		steps         int64
	}{
		{"kd", "kd", nil, 0, 3},
		{"ifacd", "ifacd2", []string{"--ifacd-feat-dim", "16"}, ifacdHeads, 3},
		// RepDistiller keeps the last incomplete batch (12 = 5 + 5 + 2): CRD's contrast indices change shape.
		{"crd", "crd", []string{"--param", "crd_k=4", "--param", "crd_feat_dim=8", "--recipe", "repdistiller", "--batch", "5"},
			2 * (64*8 + 8), 3},
	} {
		t.Run(tc.method, func(t *testing.T) {
			runDir := filepath.Join(t.TempDir(), "distill")
			args := append([]string{"--out", runDir, "--seed", "2", "distill", "--teacher", teacherDir, "--student", "resnet8",
				"--method", tc.method, "--epochs", "1", "--batch", "4", "--eval-batch", "6", "--padding", "1"}, tc.args...)
			cli, app := parseCLI(t, args...)
			res, err := cli.Distill.run(stdctx.Background(), app, testutil.Backend())
			if err != nil {
				t.Fatal(err)
			}
			if res.Result.GlobalStep != tc.steps {
				t.Errorf("%d steps, want %d", res.Result.GlobalStep, tc.steps)
			}
			s, err := report.ReadSummary(runDir)
			if err != nil {
				t.Fatal(err)
			}
			if s.Method != tc.method || s.Label != tc.label || s.Teacher != "resnet8" || s.Student != "resnet8" ||
				s.Epochs != 1 || s.Dataset != "fashion-mnist" || s.Gamma != 1 || s.Alpha != 1 || s.KDTemperature != 4 {
				t.Errorf("summary %+v", s)
			}
			// config.json records every tunable of the method's table with its value in the run.
			raw, err := os.ReadFile(filepath.Join(runDir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Params struct {
					MethodParams map[string]any `json:"method_params"`
				} `json:"params"`
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			m, _ := distill.Get(tc.method)
			for _, p := range distill.ParamsOf(m) {
				if _, ok := cfg.Params.MethodParams[p.Key]; !ok {
					t.Errorf("config.json's method_params %v lack %s", cfg.Params.MethodParams, p.Key)
				}
			}
			wantParams := map[string]map[string]any{"ifacd": {"ifacd_feat_dim": 16.0, "ifacd_t": 0.07, "ifacd_rs_detach": true},
				"crd": {"crd_k": 4.0, "crd_feat_dim": 8.0}}[tc.method]
			for k, v := range wantParams {
				if got := cfg.Params.MethodParams[k]; got != v {
					t.Errorf("config.json's method_params[%s] = %v, want %v", k, got, v)
				}
			}
			wantBeta := map[string]float64{"kd": 0, "ifacd": 0.8, "crd": 0.8}[tc.method]
			if s.Beta != wantBeta {
				t.Errorf("β = %g, want the method's default %g", s.Beta, wantBeta)
			}
			// With 6 test images the accuracy is a multiple of 100/6.
			for _, v := range []float64{s.FinalTop1, s.FinalTop5, s.BestTop1, *s.TeacherTop1} {
				if k := v / (100.0 / 6); v < 0 || v > 100 || math.Abs(k-math.Round(k)) > 1e-9 {
					t.Errorf("accuracy %v is not a multiple of 100/6 in [0, 100]", v)
				}
			}
			if s.FinalTop5 < s.FinalTop1 || s.BestTop1 != s.FinalTop1 || s.BestTop1Epoch != 1 {
				t.Errorf("accuracies: final %v/%v, best %v at %d", s.FinalTop1, s.FinalTop5, s.BestTop1, s.BestTop1Epoch)
			}
			if *s.TeacherTop1 != teacherMetrics[0]["test_top1"] || *s.TeacherTop5 != teacherMetrics[0]["test_top5"] {
				t.Errorf("teacher measured %v/%v, its own run logged %v/%v", *s.TeacherTop1, *s.TeacherTop5,
					teacherMetrics[0]["test_top1"], teacherMetrics[0]["test_top5"])
			}
			p := s.Params
			if p.Teacher != resnet8 || p.Student != resnet8 || p.Heads != tc.heads ||
				p.HeadsReported != 2*tc.heads || p.Talk != 2*resnet8+2*tc.heads || p.Trainable != resnet8+tc.heads {
				t.Errorf("params %+v, want teacher = student = %d, heads %d (reported twice)", p, resnet8, tc.heads)
			}
			if s.PeakRSSBytes <= 0 || s.SecondsPerEpoch <= 0 || s.TrainSeconds <= 0 {
				t.Errorf("peak RSS %d, seconds per epoch %v", s.PeakRSSBytes, s.SecondsPerEpoch)
			}

			ms := readMetrics(t, runDir)
			if len(ms) != 1 {
				t.Fatalf("%d metrics lines, want 1", len(ms))
			}
			terms := []string{"train_ce", "train_kd", "train_top1", "test_top1"}
			if tc.method != "kd" {
				terms = append(terms, "train_"+tc.method)
			}
			for _, k := range terms {
				if v, ok := ms[0][k]; !ok || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("metrics: %s = %v (present %v)", k, v, ok)
				}
			}
			want := ms[0]["train_ce"] + ms[0]["train_kd"] + wantBeta*ms[0]["train_"+tc.method]
			if math.Abs(ms[0]["train_loss"]-want) > 1e-4*math.Max(1, want) {
				t.Errorf("train_loss %v, want γ·ce + α·kd + β·method = %v", ms[0]["train_loss"], want)
			}

			// The teacher is frozen: weights and batch-norm statistics are the teacher run's.
			vars := checkpointVars(t, runDir)
			nTeacher := 0
			for name, tv := range teacherVars {
				rel, ok := strings.CutPrefix(name, "/model/")
				if !ok {
					continue
				}
				dv, ok := vars["/teacher/"+rel]
				if !ok {
					t.Fatalf("distill checkpoint lacks /teacher/%s", rel)
				}
				if dv.Trainable || !sameValues(dv.Value, tv.Value) {
					t.Errorf("teacher variable %s changed (trainable %v)", rel, dv.Trainable)
				}
				nTeacher++
			}
			if nTeacher == 0 {
				t.Fatal("the teacher checkpoint has no /model variables")
			}
			// The student trained: its stem moved away from the initialisation the teacher also had.
			if _, ok := vars["/student/stem/conv/weights"]; !ok {
				t.Error("no student variables in the checkpoint")
			}
			if tc.heads > 0 && !slices.ContainsFunc(slices.Collect(maps.Keys(vars)), func(k string) bool {
				return strings.HasPrefix(k, "/"+tc.method+"/")
			}) {
				t.Errorf("no /%s head variables in the checkpoint", tc.method)
			}
			// The run's record lets the evaluation commands load the student.
			enc, err := runner.LoadEncoder(runner.Env{Backend: testutil.Backend(), Log: zerolog.Nop()}, runDir, runner.EncoderOnline)
			if err != nil || enc.Model.Scope != "/student" || enc.Model.CNN.Name != "resnet8" {
				t.Errorf("loading the distilled student: %v (%+v)", err, enc)
			}
		})
	}
}

func TestDistillFlagErrors(t *testing.T) {
	dataDir := synthFashionMNIST(t, 4, 2, 8)
	noRun := t.TempDir()
	teacherDir := filepath.Join(t.TempDir(), "teacher")
	if err := rundir.WriteConfig(teacherDir, rundir.Params{Command: "train", Model: rundir.Model{Family: rundir.FamilyCNN, Scope: "/model",
		CNN: &rundir.CNN{Name: "resnet8", NumClasses: 10}, Data: rundir.DataSpec{Dataset: "fashion-mnist", Height: 8, Width: 8, Channels: 1}}},
		fit.Config{}, false); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(teacherDir, "checkpoints"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(teacherDir, "checkpoints", "step-000000000001.ckpt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--teacher", noRun, "--student", "resnet8", "--method", "fitnet"}, "unknown method"},
		{[]string{"--teacher", noRun, "--student", "resnet9"}, "unknown model"},
		{[]string{"--teacher", noRun, "--student", "resnet8"}, "--teacher"},
		{[]string{"--teacher", noRun, "--student", "resnet8", "--epochs", "0"}, "--epochs"},
		{[]string{"--teacher", noRun, "--student", "resnet8", "--kd-t", "0"}, "--kd-t"},
		{[]string{"--teacher", teacherDir, "--student", "resnet8", "--recipe", "repdistiller", "--batch", "3"}, "corrupt checkpoint"},
	} {
		args := append([]string{"distill", "--dataset", "fashion-mnist", "--data-dir", dataDir}, tc.args...)
		cli, app := parseCLI(t, args...)
		_, err := cli.Distill.run(stdctx.Background(), app, testutil.Backend())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

func TestDistillMethodParams(t *testing.T) {
	cli, _ := parseCLI(t, "distill", "--teacher", "x", "--student", "resnet8", "--ifacd-layers", "3",
		"--param", "ifacd_t=0.2", "--param", "crd_k=64", "--param", "ifacd_proj_separate=true")
	p, err := cli.Distill.MethodParams(distill.IFACD{})
	if err != nil {
		t.Fatal(err)
	}
	if p["ifacd_layers"] != 3 || p["ifacd_t"] != 0.2 || p["crd_k"] != 64 || p["ifacd_proj_separate"] != true || p["ifacd_rs_detach"] != true {
		t.Errorf("params %v", p)
	}
	for _, bad := range []string{"nokey=1", "crd_k=x", "crd_k"} {
		cli, _ := parseCLI(t, "distill", "--teacher", "x", "--student", "resnet8", "--param", bad)
		if _, err := cli.Distill.MethodParams(distill.IFACD{}); err == nil || !strings.Contains(err.Error(), "--param") {
			t.Errorf("--param %s: err = %v", bad, err)
		}
	}
}

// TestDistillResume continues a finished one-epoch CRD run to two epochs:
// the teacher, the heads, the memory banks and the host-input variables come back from the
// checkpoint, and the summary covers both epochs.
func TestDistillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("three training runs")
	}
	if !backendTrainsCNNs(t) {
		return
	}
	dataDir := synthFashionMNIST(t, 12, 6, 8)
	teacherDir := trainTinyTeacher(t, dataDir)
	runDir := filepath.Join(t.TempDir(), "distill")
	args := []string{"--out", runDir, "distill", "--teacher", teacherDir, "--student", "resnet8", "--method", "crd",
		"--param", "crd_k=4", "--recipe", "repdistiller", "--batch", "5", "--eval-batch", "6", "--no-teacher-eval"}
	cli, app := parseCLI(t, append(args, "--epochs", "1")...)
	if _, err := cli.Distill.run(stdctx.Background(), app, testutil.Backend()); err != nil {
		t.Fatal(err)
	}
	cli, app = parseCLI(t, append(args, "--epochs", "2", "--resume")...)
	res, err := cli.Distill.run(stdctx.Background(), app, testutil.Backend())
	if err != nil {
		t.Fatal(err)
	}
	if res.Result.ResumedFrom == "" || res.Result.GlobalStep != 6 || res.Summary.Epochs != 2 {
		t.Errorf("resumed from %q, %d steps, %d epochs; want a resume to 6 steps, 2 epochs", res.Result.ResumedFrom,
			res.Result.GlobalStep, res.Summary.Epochs)
	}
	if ms := readMetrics(t, runDir); len(ms) != 2 || res.Summary.TeacherTop1 != nil {
		t.Errorf("%d metrics lines (want 2); teacher top-1 %v (want none with --no-teacher-eval)", len(ms), res.Summary.TeacherTop1)
	}
	// Another student is refused.
	other := slices.Clone(args)
	other[slices.Index(other, "resnet8")] = "resnet14"
	cli, app = parseCLI(t, append(other, "--epochs", "3", "--resume")...)
	if _, err := cli.Distill.run(stdctx.Background(), app, testutil.Backend()); err == nil || !strings.Contains(err.Error(), "resnet8") {
		t.Errorf("resume with another student: err = %v", err)
	}
}
