package main

import (
	"bytes"
	stdctx "context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// withGOMAXPROCS runs fn with runtime.GOMAXPROCS(n) and no cpu:workers cap, restoring both.
func withGOMAXPROCS(n int, fn func()) {
	defer kernels.SetMaxThreads(kernels.SetMaxThreads(0))
	old := runtime.GOMAXPROCS(n)
	defer runtime.GOMAXPROCS(old)
	fn()
}

// runFingerprint is what must not depend on the core count: the final checkpoint file (its hash,
// and the file for a diagnosis) and the metrics without their timings.
type runFingerprint struct {
	ckptPath string
	ckptHash [sha256.Size]byte
	metrics  string
}

func fingerprint(t *testing.T, runDir string) runFingerprint {
	t.Helper()
	latest, err := fit.LatestCheckpoint(runDir)
	if err != nil || latest == "" {
		t.Fatalf("%s: no checkpoint (%v)", runDir, err)
	}
	b, err := os.ReadFile(latest)
	if err != nil {
		t.Fatal(err)
	}
	ms := readMetrics(t, runDir)
	for _, m := range ms {
		delete(m, "seconds")
		delete(m, "images_per_sec")
		delete(m, "peak_rss_bytes")
	}
	js, err := json.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	return runFingerprint{ckptPath: latest, ckptHash: sha256.Sum256(b), metrics: string(js)}
}

// firstDifference names the first variable whose bits differ between two checkpoints.
func firstDifference(t *testing.T, pathA, pathB string) string {
	t.Helper()
	a, errA := fit.LoadCheckpoint(pathA)
	b, errB := fit.LoadCheckpoint(pathB)
	if errA != nil || errB != nil {
		return fmt.Sprintf("loading: %v, %v", errA, errB)
	}
	if a.State.GlobalStep != b.State.GlobalStep || len(a.Variables) != len(b.Variables) {
		return fmt.Sprintf("step %d vs %d, %d vs %d variables", a.State.GlobalStep, b.State.GlobalStep, len(a.Variables), len(b.Variables))
	}
	for i, va := range a.Variables {
		vb := b.Variables[i]
		if va.ScopeAndName() != vb.ScopeAndName() {
			return fmt.Sprintf("variable %d: %s vs %s", i, va.ScopeAndName(), vb.ScopeAndName())
		}
		if !bytes.Equal(tensorBytes(va.Value), tensorBytes(vb.Value)) {
			return fmt.Sprintf("%s differs", va.ScopeAndName())
		}
	}
	return "same variables; the header differs"
}

// tensorBytes is a copy of t's raw bytes.
func tensorBytes(t *tensors.Tensor) []byte {
	var b []byte
	_ = t.ConstBytes(func(data []byte) { b = append(b, data...) })
	return b
}

// checkSame reports, through t, a checkpoint or metrics of got that differ from want's.
func checkSame(t *testing.T, label string, got, want runFingerprint) {
	t.Helper()
	if got.ckptHash != want.ckptHash {
		t.Errorf("%s: checkpoint differs: %s", label, firstDifference(t, want.ckptPath, got.ckptPath))
	}
	if got.metrics != want.metrics {
		t.Errorf("%s: metrics %s\nwant %s", label, got.metrics, want.metrics)
	}
}

// sameOnCoreCounts runs run (into a new run directory) with GOMAXPROCS 1, 2 and 3, checks that the
// three give the same checkpoint and metrics, and returns the first run's directory and
// fingerprint.
func sameOnCoreCounts(t *testing.T, what string, run func(runDir string) error) (string, runFingerprint) {
	t.Helper()
	var firstDir string
	var want runFingerprint
	for i, procs := range []int{1, 2, 3} {
		runDir := filepath.Join(t.TempDir(), "run")
		var err error
		withGOMAXPROCS(procs, func() { err = run(runDir) })
		if err != nil {
			t.Fatalf("%s, GOMAXPROCS %d: %v", what, procs, err)
		}
		got := fingerprint(t, runDir)
		if i == 0 {
			firstDir, want = runDir, got
			continue
		}
		checkSame(t, fmt.Sprintf("%s, GOMAXPROCS %d against 1", what, procs), got, want)
	}
	return firstDir, want
}

// TestTrainDistillSameBitsAnyCoreCountAndResume trains a resnet8 for two steps of batch 32 on 16×16
// images (large enough for the split sums of the convolutions' weight gradients, the Winograd
// gradient's parts and the batch-norm chunks to be cut in several pieces) with GOMAXPROCS 1, 2 and
// 3: the checkpoints must be byte-identical and the metrics equal. A run interrupted after its
// first step (on 3 cores) and resumed (on 2) must end with the same checkpoint as the
// uninterrupted runs. An IFACD distillation from the trained resnet8 must give the same bits on 1,
// 2 and 3 cores too.
func TestTrainDistillSameBitsAnyCoreCountAndResume(t *testing.T) {
	if !backendTrainsCNNs(t) {
		return
	}
	dir := synthFashionMNIST(t, 64, 16, 16)
	train := func(ctx stdctx.Context, runDir string, extra ...string) error {
		cli, app := parseCLI(t, append([]string{"--out", runDir, "--seed", "11", "train", "--model", "resnet8",
			"--dataset", "fashion-mnist", "--data-dir", dir, "--epochs", "1", "--batch", "32", "--eval-batch", "16"}, extra...)...)
		_, err := cli.Train.run(ctx, app, testutil.Backend())
		return err
	}
	teacherDir, want := sameOnCoreCounts(t, "train", func(runDir string) error { return train(stdctx.Background(), runDir) })

	// Interrupted after the first step (a cancelled context), then resumed on another core count.
	runDir := filepath.Join(t.TempDir(), "run")
	interrupted, cancel := stdctx.WithCancel(stdctx.Background())
	cancel()
	var err error
	withGOMAXPROCS(3, func() { err = train(interrupted, runDir) })
	if !errors.Is(err, fit.ErrInterrupted) {
		t.Fatalf("interrupted run: %v, want fit.ErrInterrupted", err)
	}
	withGOMAXPROCS(2, func() { err = train(stdctx.Background(), runDir, "--resume") })
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	checkSame(t, "interrupted on 3 cores, resumed on 2, against uninterrupted", fingerprint(t, runDir), want)

	// IFACD distillation of a resnet8 from that run.
	sameOnCoreCounts(t, "distill", func(runDir string) error {
		cli, app := parseCLI(t, "--out", runDir, "--seed", "11", "distill", "--teacher", teacherDir, "--student", "resnet8",
			"--method", "ifacd", "--data-dir", dir, "--epochs", "1", "--batch", "32", "--eval-batch", "16")
		_, err := cli.Distill.run(stdctx.Background(), app, testutil.Backend())
		return err
	})
}

// TestPretrainSameBitsAnyCoreCount pretrains a ViT nano (patch 4, 16×16 images, batch 64: each
// view's weight gradients sum over 64·17 tokens, split along them) for two steps with GOMAXPROCS
// 1, 2 and 3: the checkpoints must be byte-identical and the metrics equal.
func TestPretrainSameBitsAnyCoreCount(t *testing.T) {
	dataDir := t.TempDir()
	ptWriteIDX(t, dataDir, "train", 128, 16, 1)
	ptWriteIDX(t, dataDir, "t10k", 20, 16, 2)
	sameOnCoreCounts(t, "pretrain vit", func(runDir string) error {
		_, err := ptRunCLI(t, "--out", runDir, "--seed", "7", "pretrain", "vit", "--dataset", "fashion-mnist",
			"--data-dir", dataDir, "--config", "nano", "--patch", "4", "--batch", "64", "--epochs", "1",
			"--proj-hidden", "32", "--proj-out", "16", "--proj-layers", "2", "--warmup-steps", "1", "--knn-k", "5")
		return err
	})
}
