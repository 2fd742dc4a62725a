package main

import (
	stdctx "context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// TestDistillAdamWResume distils a resnet8 teacher into a ViT nano student with --optimizer adamw:
// config.json records the optimizer (the flag, and AdamW at distill.AdamWLR in the loop's
// configuration), and a run interrupted after its first step and resumed ends with the same
// checkpoint bits and metrics as the uninterrupted run (AdamW's moments come back from the
// checkpoint); resuming it with SGD is refused. Then a refused pair: its message names the pair
// and the method once, in one line.
func TestDistillAdamWResume(t *testing.T) {
	if testing.Short() {
		t.Skip("three training runs")
	}
	if !backendTrainsCNNs(t) {
		return
	}
	dataDir := synthFashionMNIST(t, 12, 6, 8)
	teacherDir := trainTinyTeacher(t, dataDir)
	run := func(ctx stdctx.Context, runDir string, extra ...string) error {
		args := append([]string{"--out", runDir, "--seed", "3", "distill", "--teacher", teacherDir, "--student", "vit:nano",
			"--method", "kd", "--epochs", "1", "--batch", "4", "--eval-batch", "6", "--padding", "1", "--no-teacher-eval"}, extra...)
		cli, app := parseCLI(t, args...)
		_, err := cli.Distill.run(ctx, app, testutil.Backend())
		return err
	}
	whole := filepath.Join(t.TempDir(), "whole")
	if err := run(stdctx.Background(), whole, "--optimizer", "adamw"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(whole, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Params struct {
			Flags struct {
				Optimizer string `json:"Optimizer"`
			} `json:"flags"`
		} `json:"params"`
		Fit struct {
			Optimizer fit.Optimizer `json:"optimizer"`
			Schedule  fit.Schedule  `json:"schedule"`
		} `json:"fit"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Params.Flags.Optimizer != "adamw" || cfg.Fit.Optimizer.Kind != fit.OptimizerAdamW || cfg.Fit.Schedule.BaseLR != distill.AdamWLR {
		t.Errorf("config.json: flag %q, optimizer %+v, schedule %+v; want adamw at lr %g\n%s", cfg.Params.Flags.Optimizer,
			cfg.Fit.Optimizer, cfg.Fit.Schedule, distill.AdamWLR, raw)
	}

	// Interrupted after the first step (a cancelled context), then resumed.
	parts := filepath.Join(t.TempDir(), "parts")
	interrupted, cancel := stdctx.WithCancel(stdctx.Background())
	cancel()
	if err := run(interrupted, parts, "--optimizer", "adamw"); !errors.Is(err, fit.ErrInterrupted) {
		t.Fatalf("interrupted run: %v, want fit.ErrInterrupted", err)
	}
	if err := run(stdctx.Background(), parts, "--optimizer", "adamw", "--resume"); err != nil {
		t.Fatalf("resume: %v", err)
	}
	checkSame(t, "interrupted and resumed against uninterrupted", fingerprint(t, parts), fingerprint(t, whole))

	// Resuming with the other optimizer is refused (its state is not in the checkpoint).
	if err := run(stdctx.Background(), parts, "--epochs", "2", "--resume"); err == nil || !strings.Contains(err.Error(), "flags changed") {
		t.Errorf("an AdamW run resumed with SGD: err = %v, want a refusal", err)
	}
	// A refused pair: one line, "distill: " once.
	err = run(stdctx.Background(), filepath.Join(t.TempDir(), "refused"), "--method", "fsp")
	const want = "distill: resnet8 → vit:nano: fsp: stage 0: the student has 64 channels, the teacher 16; FSP needs equal channel counts (choose the maps with --student-taps and --teacher-taps)"
	if err == nil || err.Error() != want {
		t.Errorf("resnet8 → vit:nano fsp: err = %v\nwant %s", err, want)
	}
}
