package main

import (
	"bytes"
	stdctx "context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ifa-toolkit/ifa/internal/cpu"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/runner"
)

// oldTrainRun is a run directory written by ifa before the commands became runner calls (commit
// 8b87cad): `ifa --seed 3 train --model resnet8 --dataset fashion-mnist --epochs 1 --batch 4
// --eval-batch 6 --padding 1 --momentum 0 --workers 1` on synthFashionMNIST(12, 6, 8), whose
// config.json names another data folder.
const oldTrainRun = "testdata/old-train-run"

// copyRun copies a run directory into a new temporary folder.
func copyRun(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "run")
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestOldCheckpointLoadsAndResumes: a checkpoint written before the change loads (ifa test
// measures the accuracy its run logged), holds the very bits today's code writes for the same
// run, and resumes to the bits of an uninterrupted run of today's code. The old run's 3×3
// convolutions ran with Winograd F(2×2, 3×3), so today's runs here force it (cpu:winograd=f2;
// the default picks F(4×4, 3×3) for the larger images, a different rounding).
func TestOldCheckpointLoadsAndResumes(t *testing.T) {
	if !backendTrainsCNNs(t) {
		return
	}
	dataDir := synthFashionMNIST(t, 12, 6, 8)
	trainArgs := func(out, epochs string, extra ...string) []string {
		return append([]string{"--out", out, "--seed", "3", "train", "--model", "resnet8", "--dataset", "fashion-mnist",
			"--data-dir", dataDir, "--epochs", epochs, "--batch", "4", "--eval-batch", "6", "--padding", "1",
			"--momentum", "0", "--workers", "1"}, extra...)
	}
	f2, err := cpu.New("winograd=f2")
	if err != nil {
		t.Fatal(err)
	}
	train := func(args []string) *runner.TrainResult {
		t.Helper()
		cli, app := parseCLI(t, args...)
		res, err := cli.Train.run(stdctx.Background(), app, f2)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	sameVars := func(what, a, b string) {
		t.Helper()
		va, vb := checkpointVars(t, a), checkpointVars(t, b)
		if len(va) == 0 || len(va) != len(vb) {
			t.Fatalf("%s: %d variables vs %d", what, len(va), len(vb))
		}
		for k, v := range va {
			w, ok := vb[k]
			if !ok || !bytes.Equal(tensorBytes(v.Value), tensorBytes(w.Value)) {
				t.Errorf("%s: variable %s differs", what, k)
			}
		}
	}

	// Loads: the accuracy ifa test measures is the one the old run logged.
	raw, err := os.ReadFile(filepath.Join(oldTrainRun, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var logged struct {
		Top1 float64 `json:"test_top1"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(raw), &logged); err != nil {
		t.Fatal(err)
	}
	res, err := (&runner.Test{Checkpoint: oldTrainRun, Dataset: "fashion-mnist", DataDir: dataDir, Batch: 6}).Run(runner.Env{Backend: testutil.Backend()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Top1 != logged.Top1 || res.Images != 6 {
		t.Errorf("ifa test on the old run: top-1 %v on %d images, its run logged %v on 6", res.Top1, res.Images, logged.Top1)
	}

	// Today's code writes the same checkpoint for the same run.
	fresh1 := filepath.Join(t.TempDir(), "fresh1")
	train(trainArgs(fresh1, "1"))
	sameVars("one epoch, old vs today's", oldTrainRun, fresh1)

	// Resumed by today's code, the old run ends where an uninterrupted run ends. (A resume checks
	// that the data folder is the run's: the copy's config.json gets this test's.)
	resumed := copyRun(t, oldTrainRun)
	cfgPath := filepath.Join(resumed, "config.json")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	folder, _ := json.Marshal(dataDir)
	cfg = bytes.ReplaceAll(cfg, []byte(`"/tmp/olddata"`), folder)
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := train(trainArgs(resumed, "2", "--resume")); res.Result.ResumedFrom == "" || res.Result.GlobalStep != 6 {
		t.Errorf("the old run did not resume: from %q, %d steps (want 6)", res.Result.ResumedFrom, res.Result.GlobalStep)
	}
	fresh2 := filepath.Join(t.TempDir(), "fresh2")
	train(trainArgs(fresh2, "2"))
	sameVars("two epochs, old resumed vs uninterrupted", resumed, fresh2)
}
