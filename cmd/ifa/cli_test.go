package main

import (
	"bufio"
	"bytes"
	stdctx "context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/runner"
)

// runCLI runs the command line in-process and returns the exit code and the error message: the
// message of the JSON log's error event, or kong's own "ifa: error:" line.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"--log-format", "json"}, args...), &stdout, &stderr)
	msg := ""
	sc := bufio.NewScanner(&stderr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var ev struct{ Level, Message string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Level == "error" {
			msg = ev.Message
		} else if rest, ok := strings.CutPrefix(line, "ifa: error: "); ok {
			msg = rest
		}
	}
	return code, msg
}

// tree lists the files and folders under dir ("" when dir does not exist).
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// TestCLIBadInput runs the ifa command line on bad input: each case exits with its code, says one
// line naming the flag or file at fault and leaves nothing on disk.
func TestCLIBadInput(t *testing.T) {
	if !backendTrainsCNNs(t) {
		return
	}
	dataDir := synthFashionMNIST(t, 8, 4, 8)
	ds := []string{"--dataset", "fashion-mnist", "--data-dir", dataDir}
	base := t.TempDir()

	// Two real runs: a resnet20 teacher and an untrained ViT encoder.
	r20 := filepath.Join(base, "resnet20")
	if code, msg := runCLI(t, nil, append([]string{"--out", r20, "train", "--model", "resnet20", "--epochs", "1", "--batch", "4",
		"--eval-batch", "4"}, ds...)...); code != 0 {
		t.Fatalf("training the resnet20 teacher: exit %d: %s", code, msg)
	}
	vitRun := filepath.Join(base, "vit")
	if code, msg := runCLI(t, nil, append([]string{"--out", vitRun, "pretrain", "vit", "--epochs", "0", "--batch", "4", "--knn-k", "2"}, ds...)...); code != 0 {
		t.Fatalf("writing the untrained ViT: exit %d: %s", code, msg)
	}
	// A run whose config.json says resnet8 but whose checkpoint holds resnet20.
	swapped := filepath.Join(base, "swapped")
	if err := os.CopyFS(swapped, os.DirFS(r20)); err != nil {
		t.Fatal(err)
	}
	p, err := rundir.ReadParams(swapped)
	if err != nil {
		t.Fatal(err)
	}
	p.Model.CNN.Name = "resnet8"
	if err := rundir.WriteConfig(swapped, p, fit.Config{}, false); err != nil {
		t.Fatal(err)
	}
	swappedCk, _ := fit.LatestCheckpoint(swapped)
	existing := filepath.Join(base, "existing")
	if err := os.CopyFS(existing, os.DirFS(r20)); err != nil {
		t.Fatal(err)
	}

	train := func(extra ...string) []string {
		return append(append([]string{"train", "--model", "resnet8", "--batch", "4"}, ds...), extra...)
	}
	distill := func(extra ...string) []string {
		return append([]string{"distill", "--student", "resnet8", "--batch", "4"}, extra...)
	}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		want   []string
		unwant []string
		noOut  bool // no --out added
	}{
		{name: "negative epochs", args: train("--epochs", "-1"), code: 2, want: []string{"--epochs -1: want >= 1"}},
		{name: "negative lr", args: train("--lr", "-1"), code: 2, want: []string{"--lr -1: want >= 0"}},
		{name: "IFA_EPOCHS like --epochs", env: map[string]string{"IFA_EPOCHS": "-1"}, args: train(), code: 2, want: []string{"--epochs -1: want >= 1"}},
		{name: "IFA_EPOCHS not a number", env: map[string]string{"IFA_EPOCHS": "many"}, args: train(), code: 2, want: []string{"epochs"}},
		{name: "one flag named", args: train("--limit-train", "-5"), code: 2, want: []string{"--limit-train -5: want >= 0"}, unwant: []string{"--padding", "--limit-test"}},
		{name: "batch larger than the data", args: train("--batch", "100"), code: 2, want: []string{"--batch 100: larger than the 8 training images"}},
		{name: "unknown model", args: []string{"train", "--model", "resnet9", "--dataset", "fashion-mnist"}, code: 2, want: []string{"--model", "resnet9"}},
		{name: "go backend trains no CNN", args: append([]string{"--backend", "go"}, train()...), code: 2, want: []string{"--backend go cannot train CNNs", "--backend cpu"}},
		{name: "go backend benches no CNN", args: []string{"--backend", "go", "bench", "--model", "resnet8", "--steps", "1", "--warmup", "0", "--batch", "2"},
			code: 2, want: []string{"--backend go cannot train CNNs"}, unwant: []string{"SimpleGo", "not implemented"}},
		{name: "resume without --out", args: train("--resume"), code: 2, want: []string{"--resume", "--out"}, noOut: true},
		{name: "out holds checkpoints", args: append([]string{"--out", existing}, train()...), code: 2, want: []string{"--out " + existing + " already holds checkpoints"}},
		{name: "pretrain batch", args: []string{"pretrain", "vit", "--batch", "1"}, code: 2, want: []string{"--batch 1: want >= 2"}},
		{name: "knn k", args: []string{"knn-eval", "--checkpoint", r20, "--k", "0"}, code: 2, want: []string{"--k 0: want >= 1"}},
		{name: "distill kd-t", args: distill("--teacher", r20, "--kd-t", "-2"), code: 2, want: []string{"--kd-t -2: want > 0"}},
		{name: "distill short flag", args: distill("--teacher", r20, "-r", "-1"), code: 2, want: []string{"--gamma -1: want >= 0"}},
		{name: "ViT as teacher", args: distill(append([]string{"--teacher", vitRun}, ds...)...), code: 1,
			want: []string{"--teacher ", vitRun, "holds vit nano (no classifier", "want a classifier"}, unwant: []string{"InvalidDType"}},
		{name: "resnet20 checkpoint in a resnet8 run (teacher)", args: distill(append([]string{"--teacher", swapped}, ds...)...), code: 1,
			want: []string{swappedCk, "holds cnn resnet20", "config.json records cnn resnet8"}, unwant: []string{"reuse variable"}},
		{name: "resnet20 checkpoint in a resnet8 run (knn-eval)", args: append([]string{"knn-eval", "--checkpoint", swapped, "--k", "2"}, ds...), code: 1,
			want: []string{swappedCk, "holds cnn resnet20", "config.json records cnn resnet8"}, unwant: []string{"reuse variable"}},
		{name: "missing teacher", args: distill("--teacher", filepath.Join(base, "nothing")), code: 1, want: []string{"--teacher", "nothing"}},
		{name: "fetch offline", args: []string{"data", "fetch", "mnist", "--data-dir", filepath.Join(base, "fetched"), "--base-url", "http://127.0.0.1:1"}, code: 1,
			want: []string{"cannot reach the download server", "offline, copy", filepath.Join(base, "fetched", "mnist")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			args := tc.args
			if !tc.noOut && !strings.Contains(strings.Join(args, " "), "--out ") {
				args = append([]string{"--out", out}, args...)
			}
			before := len(tree(t, base))
			code, msg := runCLI(t, tc.env, args...)
			t.Logf("exit %d: %s", code, msg)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (message %q)", code, tc.code, msg)
			}
			if msg == "" || strings.Contains(msg, "\n") {
				t.Errorf("message %q: want one line", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			for _, w := range tc.unwant {
				if strings.Contains(msg, w) {
					t.Errorf("message %q mentions %q", msg, w)
				}
			}
			if left := tree(t, out); len(left) > 0 {
				t.Errorf("left behind in the run folder: %v", left)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("the run folder %s was created", out)
			}
			if after := len(tree(t, base)); after != before {
				t.Errorf("%d new files or folders in %s", after-before, base)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{usagef("--epochs -1: want >= 1"), 2},
		{fmt.Errorf("train: %w", usagef("--lr -1: want > 0")), 2},
		{fmt.Errorf("train: %w after step 3", fit.ErrInterrupted), 130},
		{fmt.Errorf("data fetch: %w", errInterrupted), 130},
		{errors.New("checkpoint x: corrupt"), 1},
	} {
		if got := exitCode(tc.err); got != tc.code {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "Usage: ifa") {
		t.Errorf("--help: exit %d, output %q", code, stdout.String())
	}
	if code := run([]string{"no-such-command"}, &stdout, &stderr); code != 2 {
		t.Errorf("an unknown command: exit %d, want 2", code)
	}
}

func TestNegativeValues(t *testing.T) {
	got := negativeValues([]string{"--lr", "-1", "--epochs", "-3", "-b", "-1", "--x", "-a", "--y=-2", "--", "--z", "-4"})
	want := []string{"--lr=-1", "--epochs=-3", "-b-1", "--x", "-a", "--y=-2", "--", "--z", "-4"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("negativeValues = %q, want %q", got, want)
	}
}

// The interrupt handler: stopping it reports nothing (a run that fails on its own is not an
// interrupt); the first signal cancels the context, the second its abort context.
func TestInterruptContext(t *testing.T) {
	var log bytes.Buffer
	ctx, stop := interruptContext(zerolog.New(&log))
	stop()
	if log.Len() != 0 {
		t.Errorf("stopping the handler logged %q", log.String())
	}

	ctx, stop = interruptContext(zerolog.New(&log))
	defer stop()
	abort := abortOf(ctx)
	if abort == nil || ctx.Err() != nil || abort.Err() != nil {
		t.Fatal("fresh contexts are cancelled or the abort context is missing")
	}
	wait := func(c stdctx.Context, what string) {
		t.Helper()
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not cancelled", what)
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	wait(ctx, "first interrupt")
	if abort.Err() != nil {
		t.Error("the first interrupt cancelled the abort context")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	wait(abort, "second interrupt")
	if !strings.Contains(log.String(), "writing a checkpoint") || !strings.Contains(log.String(), "stopping without writing a checkpoint") {
		t.Errorf("log %q", log.String())
	}
}

// TestOldFlagSpellings: the earlier spellings of renamed flags still parse, to the same values.
func TestOldFlagSpellings(t *testing.T) {
	for _, tc := range []struct{ old, now []string }{
		{[]string{"pretrain", "vit", "--mode", "byol", "--crop-pad", "2"}, []string{"pretrain", "vit", "--method", "byol", "--padding", "2"}},
		{[]string{"models", "--format", "table"}, []string{"models", "--format", "text"}},
		{[]string{"report", "--csv", "r"}, []string{"report", "--format", "csv", "r"}},
		{[]string{"data", "info", "x", "--dir", "d"}, []string{"data", "info", "x", "--data-dir", "d"}},
		{[]string{"train", "--model", "m", "--dataset", "d", "--train-limit", "3", "--wd", "0.1"},
			[]string{"train", "--model", "m", "--dataset", "d", "--limit-train", "3", "--weight-decay", "0.1"}},
	} {
		old, _ := parseCLI(t, tc.old...)
		now, _ := parseCLI(t, tc.now...)
		if tc.old[0] == "models" {
			old.Models.Format = "text" // the value itself is the old spelling
		}
		if tc.old[0] == "report" {
			if !old.Report.csv() || !now.Report.csv() {
				t.Errorf("%q or %q does not print CSV", tc.old, tc.now)
			}
			old.Report.CSV, old.Report.Format = false, "csv" // the old spelling sets its own field
		}
		if !reflect.DeepEqual(old, now) {
			t.Errorf("%q parses differently from %q", tc.old, tc.now)
		}
	}
}

// TestRunnerDefaultsMatchFlags: runner.Defaults gives a Go caller the options the command line's
// defaults give, for every command whose flags are a runner struct.
func TestRunnerDefaultsMatchFlags(t *testing.T) {
	vars := runner.HelpVars()
	for _, tc := range []struct {
		args []string
		got  func(*CLI) any // the parsed options
		def  func() any     // runner.Defaults' options with the required flags set as in args
	}{
		{[]string{"pretrain", "vit"}, func(c *CLI) any { return &c.Pretrain.Vit.PretrainViT }, func() any {
			var o runner.PretrainViT
			must(t, runner.Defaults(&o, vars))
			return &o
		}},
		{[]string{"train", "--model", "resnet8", "--dataset", "cifar10"}, func(c *CLI) any { return &c.Train.Train }, func() any {
			o := runner.Train{Model: "resnet8", Dataset: "cifar10"}
			must(t, runner.Defaults(&o, vars))
			return &o
		}},
		{[]string{"distill", "--teacher", "t", "--student", "resnet8"}, func(c *CLI) any { return &c.Distill.Distill }, func() any {
			o := runner.Distill{Teacher: "t", Student: "resnet8"}
			must(t, runner.Defaults(&o, vars))
			return &o
		}},
		{[]string{"bench", "--model", "resnet8"}, func(c *CLI) any { return &c.Bench.Bench }, func() any {
			o := runner.Bench{Model: "resnet8"}
			must(t, runner.Defaults(&o, vars))
			return &o
		}},
		{[]string{"knn-eval", "--checkpoint", "/r"}, func(c *CLI) any { return &c.KnnEval.EvalInput }, func() any {
			o := runner.EvalInput{Checkpoint: "/r"}
			must(t, runner.Defaults(&o, vars))
			return &o
		}},
		{[]string{"models"}, func(c *CLI) any { return &c.Models.Models }, func() any {
			var o runner.Models
			must(t, runner.Defaults(&o, vars))
			return &o
		}},
	} {
		cli, _ := parseCLI(t, tc.args...)
		got, def := tc.got(cli), tc.def()
		if !reflect.DeepEqual(got, def) {
			t.Errorf("%q: runner.Defaults:\n%+v\nthe flags' defaults:\n%+v", tc.args, def, got)
		}
		if c, ok := def.(interface{ Check() error }); ok {
			if err := c.Check(); err != nil {
				t.Errorf("%q: the defaults fail their check: %v", tc.args, err)
			}
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
