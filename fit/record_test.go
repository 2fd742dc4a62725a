package fit

import (
	"bytes"
	stdctx "context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/ml/context"
)

var testRecord = ModelRecord{Scope: "/model", Role: "model", Family: "mlp", Name: "mlp2", Input: []int{1, 1, 4}, Classes: 3}

// The model records round-trip through the header, and ReadCheckpointInfo reads them (and the
// variables' shapes) without the values.
func TestCheckpointModelRecords(t *testing.T) {
	ctx := smallContext(t)
	path := filepath.Join(t.TempDir(), "a.ckpt")
	rec := testRecord
	rec.Config = []byte(`{"b": 1, "a": [2]}`)
	if err := SaveCheckpoint(path, ctx, LoopState{GlobalStep: 3}, rec); err != nil {
		t.Fatal(err)
	}
	ck, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadCheckpointInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []*CheckpointInfo{ck.Info(), info} {
		m, ok := got.Model("/model/")
		if !ok || !m.SameModel(rec) || m.Role != "model" || got.State.GlobalStep != 3 || len(got.Variables) != len(ck.Variables) {
			t.Errorf("info %+v: model %+v %v", got, m, ok)
		}
	}
	same := rec
	same.Config = []byte(`{"a":[2],"b":1}`)
	other := rec
	other.Classes = 4
	if !rec.SameModel(same) || rec.SameModel(other) {
		t.Error("SameModel compares the configuration by value and the classes")
	}
	if s := rec.String(); s != "mlp mlp2 (3 classes, 1x1x4 input)" {
		t.Errorf("String() = %q", s)
	}
	// A file of another length is refused by the header-only read too.
	raw, _ := os.ReadFile(path)
	if err := os.WriteFile(path, raw[:len(raw)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCheckpointInfo(path); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Errorf("truncated file: %v", err)
	}
}

// Resuming refuses a checkpoint whose record names another model, and accepts one without records
// (an older checkpoint) with a warning.
func TestResumeChecksModelRecord(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Epochs = 1
	job := mlpJob(context.New(), newSyntheticLoader(testN, testD, testC, testB, 3), nil)
	job.Models = []ModelRecord{testRecord}
	if _, err := Run(stdctx.Background(), job, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Epochs, cfg.Resume = 2, true
	other := testRecord
	other.Name = "mlp3"
	job = mlpJob(context.New(), newSyntheticLoader(testN, testD, testC, testB, 3), nil)
	job.Models = []ModelRecord{other}
	_, err := Run(stdctx.Background(), job, cfg)
	if err == nil || !strings.Contains(err.Error(), "holds mlp mlp2 (3 classes, 1x1x4 input) at /model, but this run trains mlp mlp3") {
		t.Fatalf("resuming another model: %v", err)
	}

	// An older checkpoint: no records. It resumes, with a warning.
	legacy := t.TempDir()
	cfg = baseConfig(legacy)
	cfg.Epochs = 1
	if _, err := Run(stdctx.Background(), mlpJob(context.New(), newSyntheticLoader(testN, testD, testC, testB, 3), nil), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Epochs, cfg.Resume = 2, true
	var log bytes.Buffer
	job = mlpJob(context.New(), newSyntheticLoader(testN, testD, testC, testB, 3), &log)
	job.Models = []ModelRecord{testRecord}
	if _, err := Run(stdctx.Background(), job, cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "no model record") {
		t.Errorf("no warning about the missing record in %s", log.String())
	}
}

// A temporary file left by a killed checkpoint write is removed, and logged, when the run starts
// again; finished checkpoints stay.
func TestOrphanTempCheckpointRemoved(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Epochs = 1
	if _, err := trainTo(t, cfg, 0); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(dir, checkpointsDir, tempPrefix+CheckpointName(99)+"-123")
	if err := os.WriteFile(orphan, []byte("half a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := ListCheckpoints(dir)
	cfg.Epochs, cfg.Resume = 2, true
	var log bytes.Buffer
	job := mlpJob(context.New(), newSyntheticLoader(testN, testD, testC, testB, 3), &log)
	if _, err := Run(stdctx.Background(), job, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the orphaned temporary file is still there (%v)", err)
	}
	if !strings.Contains(log.String(), "removed an unfinished checkpoint write") || !strings.Contains(log.String(), orphan) {
		t.Errorf("the removal is not logged: %s", log.String())
	}
	after, _ := ListCheckpoints(dir)
	if len(after) != len(before)+1 {
		t.Errorf("checkpoints %v after resuming from %v", after, before)
	}
}

// abortAfter is a context whose Err turns non-nil after n calls: a second Ctrl-C that arrives in
// the middle of a checkpoint write.
type abortAfter struct {
	stdctx.Context
	n int
}

func (a *abortAfter) Err() error {
	if a.n--; a.n < 0 {
		return stdctx.Canceled
	}
	return nil
}

func (a *abortAfter) Deadline() (time.Time, bool) { return time.Time{}, false }

// A second interrupt during a checkpoint write abandons it: the temporary file is removed, the
// previous checkpoint is intact, and the run stops with ErrInterrupted.
func TestSecondInterruptAbandonsCheckpoint(t *testing.T) {
	for _, n := range []int{0, 1, 3} { // before the file is created, after the first variable, later
		ctx := smallContext(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "a.ckpt")
		if err := SaveCheckpoint(path, ctx, LoopState{GlobalStep: 1}); err != nil {
			t.Fatal(err)
		}
		prev, _ := os.ReadFile(path)
		err := SaveCheckpointAbortable(&abortAfter{Context: stdctx.Background(), n: n}, path, ctx, LoopState{GlobalStep: 2})
		if !errors.Is(err, ErrCheckpointAborted) {
			t.Fatalf("abort after %d checks: %v", n, err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("abort after %d checks: %d files left, want only the previous checkpoint", n, len(entries))
		}
		now, _ := os.ReadFile(path)
		if !bytes.Equal(prev, now) {
			t.Errorf("abort after %d checks: the previous checkpoint changed", n)
		}
	}

	// In the loop: the first interrupt asks for a checkpoint, the second abandons it.
	dir := t.TempDir()
	cfg := baseConfig(dir)
	loader := newSyntheticLoader(testN, testD, testC, testB, 3)
	cancel, stop := stdctx.WithCancel(stdctx.Background())
	defer stop()
	abort := &abortAfter{Context: stdctx.Background(), n: 1 << 30}
	loader.onStep = func(e, i int) {
		if e == 1 && i == 1 {
			stop()
			abort.n = 2
		}
	}
	job := mlpJob(context.New(), loader, nil)
	job.Abort = abort
	_, err := Run(cancel, job, cfg)
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "abandoned") || !strings.Contains(err.Error(), CheckpointName(5)) {
		t.Fatalf("second interrupt: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, checkpointsDir))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if _, err := LoadCheckpoint(filepath.Join(dir, checkpointsDir, CheckpointName(5))); err != nil {
		t.Errorf("the previous checkpoint: %v", err)
	}
}

// The NaN stop names the quantity that was not finite.
func TestNonFiniteNamesTheQuantity(t *testing.T) {
	nan, inf := 0.0, 0.0
	nan = nan / nan
	inf = 1 / inf
	for _, tc := range []struct {
		loss, term, grad float64
		want             string
	}{
		{3.4e27, 1, nan, "non-finite gradient norm (NaN; the loss 3.4e+27 is finite)"},
		{nan, nan, nan, "non-finite loss (NaN)"},
		{1, inf, 2, "non-finite loss term ce (+Inf)"},
		{1, 2, 3, ""},
	} {
		if got := (StepOutputs{Loss: tc.loss, Terms: []float64{tc.term}, GradNorm: tc.grad}).nonFinite([]string{"ce"}); got != tc.want {
			t.Errorf("nonFinite(%v, %v, %v) = %q, want %q", tc.loss, tc.term, tc.grad, got, tc.want)
		}
	}
}

// The extraction progress bar redraws one line in place and erases it when done.
func TestProgress(t *testing.T) {
	var out bytes.Buffer
	p := NewProgress(&out, "features train")
	p.Update(50, 100)
	p.Update(100, 100)
	p.Done()
	s := out.String()
	for _, want := range []string{"\r\x1b[Kfeatures train [############............] 50/100", "[########################] 100/100", "img/s", "ETA"} {
		if !strings.Contains(s, want) {
			t.Errorf("progress output %q lacks %q", s, want)
		}
	}
	if !strings.HasSuffix(s, "\r\x1b[K") {
		t.Errorf("the bar is not erased at the end: %q", s)
	}
	var none *Progress
	none.Update(1, 2) // a nil bar draws nothing
	none.Done()
}
