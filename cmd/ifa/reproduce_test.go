package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets scripts run this test binary as the ifa command (IFA_TEST_AS_CLI=1), so a script's
// test needs no separate build.
func TestMain(m *testing.M) {
	if os.Getenv("IFA_TEST_AS_CLI") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestReproduceTalkSmoke runs scripts/reproduce-talk.sh --smoke on a reduced plan (one pair, five
// methods, one seed; synthetic 8x8 Fashion-MNIST): the plan and estimate come first, the teacher
// and every student run, the report has the pair's column and a row per method, and a second run
// skips everything.
func TestReproduceTalkSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the smoke plan")
	}
	if !backendTrainsCNNs(t) {
		return
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := synthFashionMNIST(t, 64, 32, 8)
	root := filepath.Join(t.TempDir(), "talk")
	script := func() string {
		t.Helper()
		cmd := exec.Command("bash", "../../scripts/reproduce-talk.sh", "--smoke", "--seeds", "1")
		cmd.Env = append(os.Environ(), "IFA_TEST_AS_CLI=1", "IFA="+self, "ROOT="+root, "DATA_DIR="+dataDir,
			"PAIRS=resnet20→resnet8", "METHODS=vanilla kd attention crd ifacd2", "IFA_LOG_FORMAT=json")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return string(out)
	}
	out := script()
	planAt, firstRun := strings.Index(out, "estimate:"), strings.Index(out, "== [")
	if planAt < 0 || firstRun < 0 || planAt > firstRun || !strings.Contains(out, "student runs: 5 (5 to do), teacher runs: 1 (1 to do)") {
		t.Errorf("the plan and estimate do not come first:\n%s", out)
	}
	md, err := os.ReadFile(filepath.Join(root, "report", "tables.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"resnet20→resnet8", "vanilla", "| kd", "attention", "crd", "ifacd2", "teacher"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("tables.md lacks %q:\n%s", want, md)
		}
	}
	for _, f := range []string{"final_top1.png", "curves_resnet20-resnet8.png", "accuracy.csv", "memory.csv", "params.csv", "time.csv"} {
		if _, err := os.Stat(filepath.Join(root, "report", f)); err != nil {
			t.Error(err)
		}
	}
	// Resuming a finished study runs nothing.
	out = script()
	if !strings.Contains(out, "(0 to do)") || strings.Contains(out, "seed 0") || strings.Contains(out, "teacher resnet20: train\n") {
		t.Errorf("the second run redid work:\n%s", out)
	}
}
