package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/runner"
	"github.com/ifa-toolkit/ifa/ssl"
	"github.com/ifa-toolkit/ifa/vit"
)

// benchJSON runs `ifa bench ARGS --format json` on the test backend and decodes its output.
func benchJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	cli, app := parseCLI(t, append(append([]string{"bench"}, args...), "--format", "json")...)
	c := &cli.Bench
	res, err := c.Bench.Run(runner.Env{Backend: testutil.Backend(), Seed: app.Globals.Seed})
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	var buf bytes.Buffer
	if err := c.write(&buf, res); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.TrimSpace(buf.String()), "\n"); n != 0 {
		t.Errorf("%q: JSON output is %d lines, want one object:\n%s", args, n+1, buf.String())
	}
	var out map[string]any
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("%q: %v in %s", args, err, buf.String())
	}
	for _, k := range []string{"images_per_sec", "step_seconds_median", "peak_memory_bytes", "compile_seconds", "final_loss", "trainable_params"} {
		v, ok := out[k].(float64)
		// Only a loss may be negative (SimSiam's negative cosine lies in [−1, 1]).
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) || (v < 0 && k != "final_loss") {
			t.Errorf("%q: %s = %v", args, k, out[k])
		}
	}
	if med := out["step_seconds_median"].(float64); med <= 0 || math.Abs(out["images_per_sec"].(float64)*med-out["batch"].(float64)) > 1e-6 {
		t.Errorf("%q: images/s %v and median %v do not agree with batch %v", args, out["images_per_sec"], med, out["batch"])
	}
	if out["peak_memory_bytes"].(float64) <= 0 {
		t.Errorf("%q: peak memory %v", args, out["peak_memory_bytes"])
	}
	return out
}

func TestBenchCNNMethodsJSON(t *testing.T) {
	if !backendTrainsCNNs(t) {
		return
	}
	tiny := []string{"--model", "resnet8", "--batch", "2", "--steps", "1", "--warmup", "0", "--input", "8x8x1", "--classes", "10"}
	none := benchJSON(t, tiny...)
	// resnet8 with 1 input channel and 10 classes: 83,892 (3 channels, 100 classes) − 288 − 5,850.
	if none["trainable_params"].(float64) != 77_754 || none["method"] != "none" || none["peer"] != "ifa" {
		t.Errorf("none: %v", none)
	}
	// The teacher is frozen: kd trains exactly the student's parameters.
	kd := benchJSON(t, append(tiny, "--method", "kd", "--teacher", "resnet14")...)
	if kd["trainable_params"] != none["trainable_params"] || kd["teacher"] != "resnet14" {
		t.Errorf("kd: %v", kd)
	}
	// IFACD adds the heads: 2 rescalers Linear(64, 64)+BN and the two projectors Linear(64, 128)+BN.
	ifacd := benchJSON(t, append(tiny, "--method", "ifacd", "--teacher", "resnet14")...)
	heads := 2*(64*64+64+2*64) + 2*(64*128+128+2*128)
	if got := ifacd["trainable_params"].(float64) - none["trainable_params"].(float64); got != float64(heads) {
		t.Errorf("ifacd: %v head parameters, want %d", got, heads)
	}
}

func TestBenchViTLWCLRJSON(t *testing.T) {
	out := benchJSON(t, "--model", "vit:nano", "--batch", "4", "--steps", "2", "--warmup", "1", "--input", "8x8x1",
		"--proj-hidden", "16", "--proj-out", "8")
	cfg, err := vit.Get("nano")
	if err != nil {
		t.Fatal(err)
	}
	want := cfg.WithImage(8, 8, 1).ParamCount() + ssl.HeadParams(ssl.IFACLRProjector(16, 8), cfg.Dim)
	if out["method"] != "lwclr" || out["trainable_params"].(float64) != float64(want) || out["steps"].(float64) != 2 {
		t.Errorf("vit lwclr: %v (want %d trainable params)", out, want)
	}
	// Two views of 4 images at τ = 0.5: the logits of unit vectors lie in [−2, 2], so each anchor's
	// loss −log p(positive) lies in (0, 4 + log 7).
	if l := out["final_loss"].(float64); !(l > 0 && l < 4+math.Log(7)) {
		t.Errorf("vit lwclr loss %v", l)
	}
}

// Every registered pretraining method benches on a ViT; the momentum methods train only the
// online encoder, projector and predictor (the target copy is not trainable).
func TestBenchViTMethods(t *testing.T) {
	cfg, err := vit.Get("nano")
	if err != nil {
		t.Fatal(err)
	}
	enc := cfg.WithImage(8, 8, 1).ParamCount()
	for _, m := range ssl.Methods() {
		out := benchJSON(t, "--model", "vit:nano", "--batch", "4", "--steps", "1", "--warmup", "0", "--input", "8x8x1",
			"--method", string(m), "--proj-hidden", "16", "--proj-out", "8")
		l, ok := out["final_loss"].(float64)
		if out["method"] != string(m) || !ok || math.IsNaN(l) {
			t.Errorf("%s: %v", m, out)
			continue
		}
		pcfg := ssl.PretrainConfig{Method: m}.WithDefaults()
		pcfg.Projector.Hidden, pcfg.Projector.Out = 16, 8
		want := enc + ssl.HeadParams(pcfg.Projector, cfg.Dim)
		if pcfg.Predictor.Layers > 0 {
			pcfg.Predictor.Out = 8
			want += ssl.HeadParams(pcfg.Predictor, 8)
		}
		if got := out["trainable_params"].(float64); got != float64(want) {
			t.Errorf("%s: %v trainable parameters, want %d", m, got, want)
		}
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", "resnet9"}, "unknown model"},
		{[]string{"--model", "vgg8", "--method", "kd"}, "no default teacher"},
		{[]string{"--model", "vit:nano", "--method", "kd", "--input", "28x28x1"}, "a ViT takes none or a pretraining method (byol"},
		{[]string{"--model", "resnet8", "--method", "lwclr"}, "a CNN takes"},
		{[]string{"--model", "vit:nano", "--input", "30x30x1"}, "not divisible"},
		{[]string{"--model", "resnet8", "--steps", "0"}, "--steps"},
		{[]string{"--model", "resnet8", "--input", "32x32"}, "--input"},
	} {
		cli, app := parseCLI(t, append([]string{"bench"}, tc.args...)...)
		_, err := cli.Bench.Bench.Run(runner.Env{Backend: testutil.Backend(), Seed: app.Globals.Seed})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
