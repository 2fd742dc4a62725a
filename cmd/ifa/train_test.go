package main

import (
	"bufio"
	stdctx "context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/gomlx/gomlx/backends"
	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/runner"
)

// parseCLI parses args as the ifa command line (defaults applied) and returns the CLI and an App
// with a silent logger.
func parseCLI(t *testing.T, args ...string) (*CLI, *App) {
	t.Helper()
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("ifa"), cliVars(), kong.Exit(func(int) { t.Fatalf("kong exited on %q", args) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return &cli, &App{Globals: &cli.Globals, Log: zerolog.New(io.Discard)}
}

// backendTrainsCNNs reports whether the test backend has the ops a convolution's gradient needs
// (Reverse and Pad); GoMLX's simplego lacks them, ifa's internal/cpu has them. Without them the test
// is skipped with that reason.
func backendTrainsCNNs(t *testing.T) bool {
	t.Helper()
	ops := testutil.Backend().Capabilities().Operations
	if !ops[backends.OpTypeReverse] || !ops[backends.OpTypePad] {
		t.Skipf("the test backend %s lacks Reverse/Pad: it cannot train a CNN", testutil.Backend().Name())
		return false
	}
	return true
}

// writeIDX writes an IDX file: magic, big-endian dimensions, payload.
func writeIDX(t *testing.T, path string, magic uint32, dims []int, payload []byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	_ = binary.Write(w, binary.BigEndian, magic)
	for _, d := range dims {
		_ = binary.Write(w, binary.BigEndian, uint32(d))
	}
	_, _ = w.Write(payload)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// synthFashionMNIST writes a tiny Fashion-MNIST-shaped IDX dataset (size×size images, 10 classes)
// into a new folder: image i has label i mod 10 and a bright square whose position encodes it.
func synthFashionMNIST(t *testing.T, nTrain, nTest, size int) string {
	t.Helper()
	dir := t.TempDir()
	for _, split := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		pix := make([]byte, split.n*size*size)
		labels := make([]byte, split.n)
		for i := range split.n {
			l := i % 10
			labels[i] = byte(l)
			img := pix[i*size*size : (i+1)*size*size]
			for k := range img {
				img[k] = byte((i*7 + k*13) % 40) // background noise
			}
			r, c := (l/4)*(size/4), (l%4)*(size/4)
			for y := r; y < r+size/4; y++ {
				for x := c; x < c+size/4; x++ {
					img[y*size+x] = 250
				}
			}
		}
		writeIDX(t, filepath.Join(dir, split.prefix+"-images-idx3-ubyte"), 0x00000803, []int{split.n, size, size}, pix)
		writeIDX(t, filepath.Join(dir, split.prefix+"-labels-idx1-ubyte"), 0x00000801, []int{split.n}, labels)
	}
	return dir
}

// readMetrics reads metrics.jsonl of a run directory.
func readMetrics(t *testing.T, runDir string) []map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, fit.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]float64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		m := map[string]float64{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestTrainTinyRunWritesCheckpointMetricsAndModelRecord(t *testing.T) {
	if !backendTrainsCNNs(t) {
		return
	}
	dir := synthFashionMNIST(t, 12, 6, 8)
	runDir := filepath.Join(t.TempDir(), "run")
	cli, app := parseCLI(t, "--out", runDir, "--seed", "3", "train", "--model", "resnet8", "--dataset", "fashion-mnist",
		"--data-dir", dir, "--epochs", "1", "--batch", "4", "--eval-batch", "4", "--padding", "1")
	res, err := cli.Train.run(stdctx.Background(), app, testutil.Backend())
	if err != nil {
		t.Fatal(err)
	}
	if res.Result.Epochs != 1 || res.Result.GlobalStep != 3 {
		t.Errorf("epochs %d, steps %d; want 1 epoch of 3 steps (12 images, batch 4)", res.Result.Epochs, res.Result.GlobalStep)
	}

	// metrics.jsonl: one epoch with test accuracy in range and a finite loss.
	ms := readMetrics(t, runDir)
	if len(ms) != 1 {
		t.Fatalf("%d metrics lines, want 1", len(ms))
	}
	m := ms[0]
	for _, k := range []string{"test_top1", "test_top5", "test_loss", "train_loss", "train_ce", "train_top1", "lr"} {
		v, ok := m[k]
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("metrics: %s = %v (present %v)", k, v, ok)
		}
	}
	if m["test_top1"] < 0 || m["test_top1"] > 100 || m["test_top5"] < m["test_top1"] || m["lr"] != 0.05 || m["epoch"] != 1 {
		t.Errorf("metrics: %v", m)
	}
	// With 6 test images of 6 distinct classes, top-1 is a multiple of 100/6.
	if k := m["test_top1"] / (100.0 / 6); math.Abs(k-math.Round(k)) > 1e-9 {
		t.Errorf("test_top1 %v is not a multiple of 100/6", m["test_top1"])
	}

	// config.json records the model (common.go's record) and the flags.
	params, err := rundir.ReadParams(runDir)
	if err != nil {
		t.Fatal(err)
	}
	rec := params.Model
	if params.Command != "train" || rec.Family != rundir.FamilyCNN || rec.CNN == nil || rec.CNN.Name != "resnet8" ||
		rec.CNN.NumClasses != 10 || rec.Scope != runner.TrainModelScope || rec.Data.Height != 8 || rec.Data.Width != 8 ||
		rec.Data.Channels != 1 || len(rec.Data.Mean) != 1 || rec.Data.Dataset != "fashion-mnist" {
		t.Errorf("model record %+v (cnn %+v)", rec, rec.CNN)
	}
	if res.Params != 77_754 {
		t.Errorf("resnet8 with 1 channel and 10 classes: %d params, want 77,754", res.Params)
	}
	cfg, err := os.ReadFile(filepath.Join(runDir, fit.ConfigFile))
	if err != nil || !strings.Contains(string(cfg), `"Model": "resnet8"`) || !strings.Contains(string(cfg), `"milestones": [`) {
		t.Errorf("config.json (%v):\n%s", err, cfg)
	}

	// The checkpoint holds the model under its scope, and evaluating its variables on the test set
	// gives the accuracy the run logged.
	latest, err := fit.LatestCheckpoint(runDir)
	if err != nil || latest == "" || latest != res.Result.Checkpoint {
		t.Fatalf("latest checkpoint %q (%v), run reported %q", latest, err, res.Result.Checkpoint)
	}
	ck, err := fit.LoadCheckpoint(latest)
	if err != nil {
		t.Fatal(err)
	}
	if ck.State.GlobalStep != 3 || ck.State.Epoch != 1 {
		t.Errorf("checkpoint state %+v", ck.State)
	}
	found := false
	for _, v := range ck.Variables {
		if v.ScopeAndName() == "/model/stem/conv/weights" {
			found = true
		}
	}
	if !found {
		t.Errorf("checkpoint has no /model/stem/conv/weights")
	}
}

func TestTrainInterruptThenResume(t *testing.T) {
	if !backendTrainsCNNs(t) {
		return
	}
	dir := synthFashionMNIST(t, 8, 4, 8)
	runDir := filepath.Join(t.TempDir(), "run")
	args := []string{"--out", runDir, "train", "--model", "resnet8", "--dataset", "fashion-mnist", "--data-dir", dir,
		"--batch", "4", "--eval-batch", "4", "--milestones", "1", "--pad-to-32", "--epochs", "2"}
	// An interrupt (Ctrl-C cancels this context) stops the run after its first step with a checkpoint.
	interrupted, cancel := stdctx.WithCancel(stdctx.Background())
	cancel()
	cli, app := parseCLI(t, args...)
	_, err := cli.Train.run(interrupted, app, testutil.Backend())
	if !errors.Is(err, fit.ErrInterrupted) || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("interrupted run: err = %v, want fit.ErrInterrupted with a hint to --resume", err)
	}
	if ck, err := fit.LatestCheckpoint(runDir); err != nil || !strings.HasSuffix(ck, "step-000000000001.ckpt") {
		t.Fatalf("checkpoint after the interrupt: %q (%v), want step 1", ck, err)
	}
	// A fresh run refuses the directory; --resume continues it to the end.
	cli, app = parseCLI(t, args...)
	if _, err := cli.Train.run(stdctx.Background(), app, testutil.Backend()); err == nil {
		t.Errorf("a fresh run into a directory with checkpoints: no error")
	}
	cli, app = parseCLI(t, append(args, "--resume")...)
	res, err := cli.Train.run(stdctx.Background(), app, testutil.Backend())
	if err != nil {
		t.Fatal(err)
	}
	if res.Result.ResumedFrom == "" || res.Result.GlobalStep != 4 || res.Result.Epochs != 2 {
		t.Errorf("resumed from %q, %d steps, %d epochs; want a resume to 4 steps, 2 epochs", res.Result.ResumedFrom,
			res.Result.GlobalStep, res.Result.Epochs)
	}
	if res.Record.Data.Height != 32 || res.Record.Data.Width != 32 {
		t.Errorf("--pad-to-32: record %+v", res.Record)
	}
	// The evaluation commands pad the 8x8 images to the recorded 32x32 input, as training did.
	out, err := ptRunCLI(t, "knn-eval", "--checkpoint", runDir, "--k", "3", "--format", "json")
	if err != nil || !strings.Contains(out, "\"top1\"") {
		t.Errorf("knn-eval of a --pad-to-32 run: %q, %v", out, err)
	}
	ms := readMetrics(t, runDir)
	if len(ms) != 2 || ms[0]["lr"] != 0.05 || math.Abs(ms[1]["lr"]-0.005) > 1e-12 {
		t.Errorf("metrics after resume: %v (want 2 epochs, lr 0.05 then 0.005)", ms)
	}
	// A resume with another model is refused before anything is written.
	cli, app = parseCLI(t, "--out", runDir, "train", "--model", "resnet14", "--dataset", "fashion-mnist", "--data-dir", dir,
		"--pad-to-32", "--resume", "--batch", "4")
	if _, err := cli.Train.run(stdctx.Background(), app, testutil.Backend()); err == nil || !strings.Contains(err.Error(), "resnet8") {
		t.Errorf("resume with another model: err = %v", err)
	}
}

func TestTrainFlagErrors(t *testing.T) {
	dir := synthFashionMNIST(t, 4, 2, 8)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", "resnet9"}, "unknown model"},
		{[]string{"--model", "resnet8", "--epochs", "0"}, "--epochs"},
		{[]string{"--model", "resnet8", "--resume"}, "--out"},
		{[]string{"--model", "resnet8", "--schedule", "multistep", "--lr-factor", "0"}, "factor"},
	} {
		args := append([]string{"train", "--dataset", "fashion-mnist", "--data-dir", dir, "--batch", "2"}, tc.args...)
		cli, app := parseCLI(t, args...)
		_, err := cli.Train.run(stdctx.Background(), app, testutil.Backend())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
