package main

import (
	stdctx "context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/runner"
)

// TestTrainViTInitAndAdamW: ifa train --model vit:nano --init takes a pretrained ViT encoder
// (ifa pretrain vit, no classifier): with a negligible rate the encoder's weights are the
// pretrained ones and the head starts afresh; a ViT of another configuration and a CNN are
// refused in one line naming the file; --optimizer adamw is recorded and trains.
func TestTrainViTInitAndAdamW(t *testing.T) {
	if !backendTrainsCNNs(t) {
		return
	}
	dataDir := synthFashionMNIST(t, 8, 4, 8)
	ds := []string{"--dataset", "fashion-mnist", "--data-dir", dataDir}
	dir := t.TempDir()
	pre := filepath.Join(dir, "pre")
	if code, msg := runCLI(t, nil, append([]string{"--out", pre, "--seed", "3", "pretrain", "vit", "--epochs", "0", "--batch", "4",
		"--knn-k", "2"}, ds...)...); code != 0 {
		t.Fatalf("writing the ViT encoder: exit %d: %s", code, msg)
	}
	l, err := rundir.Load(testutil.Backend(), pre, rundir.Want{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Model.Classes() != 0 || l.Model.Name() != "vit:nano" {
		t.Fatalf("pretrained %s, want vit:nano without a classifier", l.Model)
	}

	train := func(out string, extra ...string) error {
		t.Helper()
		args := append([]string{"--out", out, "train", "--epochs", "1", "--batch", "4", "--eval-batch", "4"}, ds...)
		cli, app := parseCLI(t, append(args, extra...)...)
		_, err := cli.Train.run(stdctx.Background(), app, testutil.Backend())
		return err
	}
	ft := filepath.Join(dir, "ft")
	if err := train(ft, "--model", "vit:nano", "--init", pre, "--lr", "1e-30", "--weight-decay", "0"); err != nil {
		t.Fatal(err)
	}
	pv, fv := checkpointVars(t, pre), checkpointVars(t, ft)
	scope := strings.TrimSuffix(l.Model.Scope, "/")
	n := 0
	for k, v := range pv {
		if !strings.HasPrefix(k, scope+"/") {
			continue
		}
		// A rate of 1e-30 moves a weight by ~1e-30 × its gradient: nothing for the non-zero
		// weights, a few 1e-32 for the zero-initialised offsets.
		got, ok := fv[runner.TrainModelScope+strings.TrimPrefix(k, scope)]
		if !ok || !got.Value.Shape().Equal(v.Value.Shape()) {
			t.Fatalf("--init: %s is missing from the fine-tuned run", k)
		}
		g, w := tensors.MustCopyFlatData[float32](got.Value), tensors.MustCopyFlatData[float32](v.Value)
		for i := range w {
			if d := math.Abs(float64(g[i] - w[i])); d > 1e-6*math.Abs(float64(w[i]))+1e-20 {
				t.Fatalf("--init: %s[%d] = %g in the fine-tuned run, %g pretrained", k, i, g[i], w[i])
			}
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no pretrained variables under %s", scope)
	}
	if _, ok := fv[runner.TrainModelScope+"/head/weights"]; !ok {
		t.Fatalf("the fine-tuned run has no classifier head: %d variables", len(fv))
	}

	// Another ViT configuration, and a CNN, are refused before anything is written.
	for _, c := range []struct {
		model, want string
	}{
		{"vit:nano_2", "want vit:nano_2"},
		{"resnet8", "want a cnn model"},
	} {
		out := filepath.Join(dir, "bad-"+c.model[:5])
		err := train(out, "--model", c.model, "--init", pre)
		if err == nil || !strings.Contains(err.Error(), "--init") || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("--model %s --init %s: %v, want an error with %q", c.model, pre, err, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("--model %s: a refused run left %s", c.model, out)
		}
	}

	// AdamW: recorded in config.json, and the weights move.
	aw := filepath.Join(dir, "adamw")
	if err := train(aw, "--model", "vit:nano", "--optimizer", "adamw", "--lr", "1e-3", "--weight-decay", "0.05"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(aw, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ReplaceAll(string(raw), " ", ""), `"kind":"adamw"`) {
		t.Fatalf("config.json does not record the adamw optimizer:\n%s", raw)
	}
}
