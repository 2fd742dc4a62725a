package main

import (
	stdctx "context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/runner"
)

// fourDevices is the test backend claiming four devices: enough for NewDataParallel's validation,
// which is all it is used for here (nothing is compiled on it).
type fourDevices struct{ backends.Backend }

func (fourDevices) NumDevices() int { return 4 }

func TestDevicesFlag(t *testing.T) {
	_, app := parseCLI(t, "models")
	if app.Globals.Devices != 1 {
		t.Errorf("default --devices %d, want 1", app.Globals.Devices)
	}
	_, app = parseCLI(t, "--devices", "4", "models")
	if app.Globals.Devices != 4 {
		t.Errorf("--devices 4 parsed as %d", app.Globals.Devices)
	}
	t.Setenv("IFA_DEVICES", "2")
	_, app = parseCLI(t, "models")
	if app.Globals.Devices != 2 {
		t.Errorf("IFA_DEVICES=2 parsed as %d", app.Globals.Devices)
	}
}

func TestDataParallelFlagChecks(t *testing.T) {
	four := fourDevices{testutil.Backend()}
	for _, tc := range []struct {
		devices, batch, examples int
		dropLast                 bool
		want                     string // "" for no error
	}{
		{1, 7, 30, false, ""}, // one device: the plain path, any batch
		{4, 8, 40, false, ""},
		{4, 8, 44, false, ""}, // last batch of 4
		{4, 8, 42, true, ""},  // last batch of 2, dropped
		{4, 6, 48, false, "--batch 6 is not a multiple of --devices 4"},
		{4, 8, 42, false, "last batch of 2, which does not split over --devices 4"},
		{8, 8, 40, false, "--devices 8: the"}, // more than the backend's 4
		{-1, 8, 40, false, "--devices -1"},
	} {
		dp, err := runner.Env{Backend: four, Devices: tc.devices}.DataParallel(tc.batch, tc.examples, tc.dropLast)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc, err)
		case tc.want == "" && dp.NumDevices() != tc.devices:
			t.Errorf("%+v: %d devices", tc, dp.NumDevices())
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: err = %v, want it to mention %q", tc, err, tc.want)
		}
	}
}

// --devices 0 is a usage error of the training commands.
func TestDevicesZeroRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--devices", "0", "train", "--model", "resnet8", "--dataset", "fashion-mnist"},
		{"--devices", "0", "distill", "--teacher", "t", "--student", "resnet8"},
	} {
		cli, app := parseCLI(t, args...)
		var err error
		if args[2] == "train" {
			_, err = cli.Train.run(stdctx.Background(), app, testutil.Backend())
		} else {
			_, err = cli.Distill.run(stdctx.Background(), app, testutil.Backend())
		}
		if err == nil || !strings.Contains(err.Error(), "--devices 0: want >= 1") || !runner.IsUsage(err) {
			t.Errorf("%q: %v, want a usage error naming --devices 0", args, err)
		}
	}
	out := filepath.Join(t.TempDir(), "vit")
	if _, err := ptRunCLI(t, append([]string{"--devices", "0"}, tinyPretrainArgs(ptTinyData(t), out)...)...); err == nil || !strings.Contains(err.Error(), "--devices 0") {
		t.Errorf("pretrain vit --devices 0: %v", err)
	}
}

// Asking the one-device test backend for two devices is a clear error before anything is written.
func TestTrainRefusesMoreDevicesThanTheBackendHas(t *testing.T) {
	dir := synthFashionMNIST(t, 12, 6, 8)
	runDir := filepath.Join(t.TempDir(), "run")
	cli, app := parseCLI(t, "--out", runDir, "--devices", "2", "train", "--model", "resnet8", "--dataset", "fashion-mnist",
		"--data-dir", dir, "--epochs", "1", "--batch", "4")
	_, err := cli.Train.run(stdctx.Background(), app, testutil.Backend())
	if err == nil || !strings.Contains(err.Error(), "--devices 2") || !strings.Contains(err.Error(), "has 1 device") {
		t.Fatalf("err = %v, want it to name --devices 2 and the backend's device count", err)
	}
	if _, err := os.Stat(runDir); !os.IsNotExist(err) {
		t.Errorf("the run directory was created (%v)", err)
	}
}

// With an XLA PJRT plugin of several devices (IFA_TEST_XLA=cuda, cpu or a plugin path), a run
// split over 2 devices matches the same run on one device: the same epoch loss and test metrics up
// to float reduction order (batch norms see the global batch in both).
func TestTrainTwoDevicesMatchesOneOnXLA(t *testing.T) {
	plugin := os.Getenv("IFA_TEST_XLA")
	if plugin == "" {
		t.Skip("set IFA_TEST_XLA to a PJRT plugin (cuda, cpu or an absolute path) of >= 2 devices to run data-parallel training on XLA")
	}
	backend, err := runner.NewBackend("xla:"+plugin, false)
	if err != nil {
		t.Skipf("XLA backend %q: %v", plugin, err)
	}
	defer backend.Finalize()
	if backend.NumDevices() < 2 {
		t.Skipf("the XLA backend %s has %d device(s): data parallelism needs 2", plugin, backend.NumDevices())
	}
	dir := synthFashionMNIST(t, 24, 10, 8)
	metrics := map[string]map[string]float64{}
	for _, devices := range []string{"1", "2"} {
		runDir := filepath.Join(t.TempDir(), "run"+devices)
		// 24 images in batches of 8; 10 test images in batches of 3, 3, 3, 1: on two devices each is
		// padded to an even size and the padding masked out.
		cli, app := parseCLI(t, "--out", runDir, "--seed", "3", "--devices", devices, "train", "--model", "resnet8",
			"--dataset", "fashion-mnist", "--data-dir", dir, "--epochs", "2", "--batch", "8", "--eval-batch", "3", "--padding", "1")
		if _, err := cli.Train.run(stdctx.Background(), app, backend); err != nil {
			t.Fatalf("--devices %s: %v", devices, err)
		}
		m := readMetrics(t, runDir)
		metrics[devices] = m[len(m)-1]
	}
	one, two := metrics["1"], metrics["2"]
	for _, k := range []string{"train_loss", "test_loss", "train_ce"} {
		if a, b := one[k], two[k]; math.Abs(a-b) > 1e-3*(1+math.Abs(a)) {
			t.Errorf("%s: one device %v, two devices %v", k, a, b)
		}
	}
	t.Logf("one device %v\ntwo devices %v", one, two)
}

// --deterministic (or IFA_DETERMINISTIC) puts XLA's deterministic-ops option into XLA_FLAGS before
// the plugin is looked up; the cpu backend leaves XLA_FLAGS alone.
func TestDeterministicFlagReachesXLAFlags(t *testing.T) {
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir())
	t.Setenv("IFA_DETERMINISTIC", "true")
	t.Setenv("XLA_FLAGS", "--xla_gpu_autotune_level=0")
	cli, app := parseCLI(t, "--backend", "cpu", "models")
	if !cli.Globals.Deterministic {
		t.Fatal("IFA_DETERMINISTIC=true did not set --deterministic")
	}
	if _, err := app.NewBackend(); err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv("XLA_FLAGS"); got != "--xla_gpu_autotune_level=0" {
		t.Errorf("cpu backend with --deterministic: XLA_FLAGS = %q, want it unchanged", got)
	}
	_, app = parseCLI(t, "--backend", "xla:no_such_device", "--deterministic", "models")
	if _, err := app.NewBackend(); err == nil {
		t.Fatal("want an error for a plugin that is not installed")
	}
	if got, want := os.Getenv("XLA_FLAGS"), "--xla_gpu_autotune_level=0 --xla_gpu_deterministic_ops=true"; got != want {
		t.Errorf("xla backend with --deterministic: XLA_FLAGS = %q, want %q", got, want)
	}
}
