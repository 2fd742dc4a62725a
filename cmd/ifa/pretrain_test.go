package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/runner"
	"github.com/ifa-toolkit/ifa/vit"
)

// ptWriteIDX writes a tiny Fashion-MNIST-format split: n images of size×size whose class (n mod 10)
// sets which horizontal band is bright, plus noise, so that the classes differ.
func ptWriteIDX(t *testing.T, dir, prefix string, n, size int, seed uint32) {
	t.Helper()
	img := make([]byte, 16, 16+n*size*size)
	binary.BigEndian.PutUint32(img[0:], 0x00000803)
	binary.BigEndian.PutUint32(img[4:], uint32(n))
	binary.BigEndian.PutUint32(img[8:], uint32(size))
	binary.BigEndian.PutUint32(img[12:], uint32(size))
	lbl := make([]byte, 8, 8+n)
	binary.BigEndian.PutUint32(lbl[0:], 0x00000801)
	binary.BigEndian.PutUint32(lbl[4:], uint32(n))
	state := seed*2654435761 + 1
	for i := range n {
		c := i % 10
		lbl = append(lbl, byte(c))
		for y := range size {
			for x := range size {
				state = state*1664525 + 1013904223
				v := int(state>>26) * 2 // noise in [0, 128)
				if y*10/size == c {
					v += 120
				}
				img = append(img, byte(min(v+x, 255)))
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, prefix+"-images-idx3-ubyte"), img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, prefix+"-labels-idx1-ubyte"), lbl, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ptTinyData writes a synthetic fashion-mnist of 8x8 images (40 train, 20 test).
func ptTinyData(t *testing.T) string {
	dir := t.TempDir()
	ptWriteIDX(t, dir, "train", 40, 8, 1)
	ptWriteIDX(t, dir, "t10k", 20, 8, 2)
	return dir
}

// ptRunCLI parses args like the ifa binary and runs the command on the test backend, returning its
// standard output.
func ptRunCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("ifa"), cliVars(), kong.Exit(func(int) { t.Fatalf("kong exited on %v", args) }))
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cli.Pretrain.Vit.stdout, cli.Pretrain.Vit.backend = &out, testutil.Backend()
	cli.KnnEval.stdout, cli.KnnEval.backend = &out, testutil.Backend()
	cli.LinearEval.stdout, cli.LinearEval.backend = &out, testutil.Backend()
	app := &App{Globals: &cli.Globals, Log: zerolog.New(ptLogWriter{t}).Level(zerolog.WarnLevel)}
	err = runSafely(func() error { return kctx.Run(app) })
	return out.String(), err
}

type ptLogWriter struct{ t *testing.T }

func (w ptLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// tinyPretrainArgs pretrains a tiny ViT (dim 64, 4 patches) on the synthetic data.
func tinyPretrainArgs(dataDir, out string, extra ...string) []string {
	args := []string{"--out", out, "pretrain", "vit", "--dataset", "fashion-mnist", "--data-dir", dataDir,
		"--config", "nano", "--patch", "4", "--batch", "10", "--proj-hidden", "16", "--proj-out", "8", "--proj-layers", "2",
		"--warmup-steps", "2", "--knn-k", "5", "--workers", "1"}
	return append(args, extra...)
}

func ptReadMetrics(t *testing.T, runDir string) []map[string]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(runDir, fit.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []map[string]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]float64
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		recs = append(recs, m)
	}
	return recs
}

func TestPretrainEvalResume(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny ViT for 3 epochs")
	}
	dataDir := ptTinyData(t)
	run := filepath.Join(t.TempDir(), "run")

	// One epoch, then resume up to two.
	if _, err := ptRunCLI(t, tinyPretrainArgs(dataDir, run, "--epochs", "1")...); err != nil {
		t.Fatal(err)
	}
	if _, err := ptRunCLI(t, tinyPretrainArgs(dataDir, run, "--epochs", "1")...); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("a second fresh run into the same --out: %v, want an error naming --resume", err)
	}
	out, err := ptRunCLI(t, tinyPretrainArgs(dataDir, run, "--epochs", "2", "--resume")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "online kNN") {
		t.Errorf("pretrain output lacks the kNN line:\n%s", out)
	}
	recs := ptReadMetrics(t, run)
	if len(recs) != 2 || recs[0]["epoch"] != 1 || recs[1]["epoch"] != 2 || recs[1]["step"] != 8 {
		t.Fatalf("metrics after resume: %v, want epochs 1 and 2 and 8 steps", recs)
	}
	for _, r := range recs {
		if v, ok := r["knn_top1"]; !ok || v < 0 || v > 1 {
			t.Fatalf("metrics line without a kNN top-1 fraction: %v", r)
		}
	}
	ck, err := fit.LatestCheckpoint(run)
	if err != nil || !strings.HasSuffix(ck, "step-000000000008.ckpt") {
		t.Fatalf("latest checkpoint %q (%v), want step 8", ck, err)
	}
	cfg, err := rundir.ReadParams(run)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Command != "pretrain vit" || cfg.Model.Family != rundir.FamilyViT || cfg.Model.ViT.Dim != 64 || cfg.Model.ViT.ImageHeight != 8 ||
		cfg.Model.Scope != "/encoder" || cfg.Model.Data.Channels != 1 {
		t.Fatalf("config.json model record: %+v", cfg)
	}

	// Resuming with another encoder is refused.
	if _, err := ptRunCLI(t, tinyPretrainArgs(dataDir, run, "--epochs", "3", "--resume", "--pooling", "mean")...); err == nil ||
		!strings.Contains(err.Error(), "--resume") {
		t.Fatalf("resume with another pooling: %v", err)
	}

	// kNN on the run directory and on the checkpoint file.
	for _, target := range []string{run, ck} {
		out, err := ptRunCLI(t, "knn-eval", "--checkpoint", target, "--k", "5", "--also-k20", "--format", "json")
		if err != nil {
			t.Fatal(err)
		}
		var knn knnJSON
		if err := json.Unmarshal([]byte(out), &knn); err != nil {
			t.Fatalf("knn-eval json %q: %v", out, err)
		}
		if knn.K != 5 || knn.N != 20 || knn.Bank != 40 || knn.Top1 < 0 || knn.Top1 > knn.Top5 || knn.Top5 > 1 ||
			len(knn.Extra) != 1 || knn.Extra[0].K != 20 {
			t.Fatalf("knn-eval: %+v", knn)
		}
		// The offline kNN with the online setting agrees with the monitor of the last epoch.
		if target == run {
			out, err := ptRunCLI(t, "knn-eval", "--checkpoint", target, "--k", "5", "--format", "json")
			if err != nil {
				t.Fatal(err)
			}
			var k5 knnJSON
			_ = json.Unmarshal([]byte(out), &k5)
			if recs[1]["knn_top1"] != k5.Top1 {
				t.Errorf("knn-eval top-1 %v, the run's last online kNN %v", k5.Top1, recs[1]["knn_top1"])
			}
		}
	}

	out, err = ptRunCLI(t, "linear-eval", "--checkpoint", run, "--epochs", "3", "--batch", "8", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var lin linearJSON
	if err := json.Unmarshal([]byte(out), &lin); err != nil {
		t.Fatalf("linear-eval json %q: %v", out, err)
	}
	if lin.N != 20 || lin.TrainN != 40 || lin.Top1 < 0 || lin.Top1 > lin.Top5 || lin.Top5 > 1 || !(lin.FinalLoss > 0) {
		t.Fatalf("linear-eval: %+v", lin)
	}
	out, err = ptRunCLI(t, "linear-eval", "--checkpoint", run, "--epochs", "1", "--batch", "8")
	if err != nil || !strings.Contains(out, "test top-1") {
		t.Fatalf("linear-eval text: %q, %v", out, err)
	}
}

func TestPretrainTwoViewModes(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny ViT")
	}
	dataDir := ptTinyData(t)
	for _, mode := range []string{"simlwclr", "supcon"} {
		run := filepath.Join(t.TempDir(), mode)
		if _, err := ptRunCLI(t, tinyPretrainArgs(dataDir, run, "--epochs", "1", "--method", mode, "--knn-every", "0")...); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		recs := ptReadMetrics(t, run)
		if len(recs) != 1 || !(recs[0]["train_loss"] > 0) {
			t.Fatalf("%s: metrics %v", mode, recs)
		}
		if _, ok := recs[0]["knn_top1"]; ok {
			t.Fatalf("%s: --knn-every 0 still ran the monitor", mode)
		}
	}
}

// TestPretrainUntrained checks --epochs 0: the seeded initial encoder is written as a step-0
// checkpoint that the evaluation commands take; the same seed gives the same weights, another seed
// other weights.
func TestPretrainUntrained(t *testing.T) {
	dataDir := ptTinyData(t)
	ckpt := func(seed string) *fit.Checkpoint {
		run := filepath.Join(t.TempDir(), "run")
		out, err := ptRunCLI(t, append([]string{"--seed", seed}, tinyPretrainArgs(dataDir, run, "--epochs", "0")...)...)
		if err != nil || !strings.Contains(out, "step-000000000000") {
			t.Fatalf("--epochs 0: %q, %v", out, err)
		}
		if _, err := os.Stat(filepath.Join(run, fit.MetricsFile)); err == nil {
			t.Fatal("--epochs 0 wrote training metrics")
		}
		out, err = ptRunCLI(t, "knn-eval", "--checkpoint", run, "--k", "5", "--format", "json")
		if err != nil {
			t.Fatalf("knn-eval of the untrained encoder: %v", err)
		}
		var res knnJSON
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.N != 20 || res.Bank != 40 || res.Top1 < 0 || res.Top1 > 1 {
			t.Fatalf("knn-eval json %q: %+v, %v", out, res, err)
		}
		path, err := fit.LatestCheckpoint(run)
		if err != nil {
			t.Fatal(err)
		}
		ck, err := fit.LoadCheckpoint(path)
		if err != nil {
			t.Fatal(err)
		}
		return ck
	}
	values := func(ck *fit.Checkpoint) map[string][]float32 {
		m := map[string][]float32{}
		for _, v := range ck.Variables {
			if strings.HasPrefix(v.Scope, "/encoder") {
				m[v.ScopeAndName()] = tensors.MustCopyFlatData[float32](v.Value)
			}
		}
		return m
	}
	a, b, c := values(ckpt("7")), values(ckpt("7")), values(ckpt("8"))
	if len(a) == 0 || a["/encoder/patch_embed/weights"] == nil {
		t.Fatalf("no encoder variables in the checkpoint: %v", a)
	}
	same, differ := true, false
	for k, va := range a {
		if !slices.Equal(va, b[k]) {
			same = false
		}
		if !slices.Equal(va, c[k]) {
			differ = true
		}
	}
	if !same || !differ {
		t.Fatalf("seed 7 twice gives equal weights: %v (want true); seed 8 gives other weights: %v (want true)", same, differ)
	}
}

func TestPretrainBadFlags(t *testing.T) {
	dataDir := ptTinyData(t)
	out := filepath.Join(t.TempDir(), "run")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--layers", "foo"}, "--layers"},
		{[]string{"--layers", "last:1"}, "--layers"},
		{[]string{"--temperature", "-1"}, "--temperature"},
		{[]string{"--method", "nope"}, "--method"},
		{[]string{"--ema-momentum", "1.5"}, "--ema-momentum"},
		{[]string{"--optimizer", "lamb"}, "--optimizer"},
		{[]string{"--patch", "3"}, "--patch"},
		{[]string{"--config", "huge"}, "--config"},
		{[]string{"--proj-layers", "4"}, "--proj-layers"},
		{[]string{"--epochs", "-1"}, "--epochs"},
		{[]string{"--crop-scale", "0"}, "--crop-scale"},
		{[]string{"--crop-scale", "1.5"}, "--crop-scale"},
		{[]string{"--jitter", "-0.1"}, "--jitter"},
		{[]string{"--solarize", "1.5"}, "--solarize"},
		{[]string{"--solarize-threshold", "-1"}, "--solarize-threshold"},
		{[]string{"--batch", "1000"}, "--batch"},
		{[]string{"--knn-k", "200"}, "--knn-k"},
		{[]string{"--lr", "-1"}, "--lr"},
		{[]string{"--dataset", "imagenet"}, "--dataset"},
	}
	for _, c := range cases {
		_, err := ptRunCLI(t, tinyPretrainArgs(dataDir, out, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %s", c.args, err, c.want)
		}
	}
	if _, err := ptRunCLI(t, "pretrain", "vit", "--resume"); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("--resume without --out: %v", err)
	}
	for _, c := range [][]string{
		{"knn-eval", "--checkpoint", filepath.Join(dataDir, "nothing")},
		{"knn-eval", "--checkpoint", dataDir},
		{"linear-eval", "--checkpoint", dataDir},
	} {
		if _, err := ptRunCLI(t, c...); err == nil || !strings.Contains(err.Error(), "--checkpoint") {
			t.Errorf("%v: %v, want an error naming --checkpoint", c, err)
		}
	}
	if _, err := ptRunCLI(t, "knn-eval", "--checkpoint", dataDir, "--k", "0"); err == nil || !strings.Contains(err.Error(), "--k") {
		t.Errorf("--k 0: %v", err)
	}
}

// TestFeatureEncoder checks the evaluation feature of --layers: the pooled vector by default, the
// selected layer vectors concatenated in layer order otherwise, and an error for a bad selection.
func TestFeatureEncoder(t *testing.T) {
	cfg, err := vit.Get("nano")
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.WithImage(8, 8, 1).WithPatch(4).WithPooling(vit.PoolMean)
	rec := rundir.Model{Family: rundir.FamilyViT, ViT: &cfg}
	pix := make([]float32, 3*8*8)
	for i := range pix {
		pix[i] = float32((i*37)%11) / 11
	}
	images := tensors.FromFlatDataAndDimensions(pix, 3, 8, 8, 1)
	// The per-layer vectors, computed directly (this creates the variables)...
	ctx := context.New()
	taps := context.MustExecOnceN(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) []*graph.Node {
		return rec.Features(ctx, x).TapVectors
	}, images)
	// ... and the features of each --layers value, from the same variables.
	var got []*tensors.Tensor
	for _, layers := range []string{"", "last:2", "1,3", "all"} {
		fn, err := runner.FeatureEncoder(rec, layers)
		if err != nil {
			t.Fatalf("--layers %q: %v", layers, err)
		}
		got = append(got, context.MustExecOnce(testutil.Backend(), ctx.Reuse(), func(ctx *context.Context, x *graph.Node) *graph.Node {
			return fn(ctx, x)
		}, images))
	}
	tap := func(l int) [][]float32 { return taps[l].Value().([][]float32) }
	concat := func(ls ...int) [][]float32 {
		out := make([][]float32, 3)
		for b := range out {
			for _, l := range ls {
				out[b] = append(out[b], tap(l)[b]...)
			}
		}
		return out
	}
	for i, want := range [][][]float32{tap(3), concat(2, 3), concat(1, 3), concat(0, 1, 2, 3)} {
		if g := got[i].Value().([][]float32); !reflect.DeepEqual(g, want) {
			t.Errorf("case %d: features %v, want %v", i, g, want)
		}
	}
	if _, err := runner.FeatureEncoder(rec, "last:0"); err == nil || !strings.Contains(err.Error(), "--layers") {
		t.Errorf("--layers last:0: %v, want an error naming --layers", err)
	}
}

// TestPretrainPredictorMethods runs every predictor method for a few steps: the loss is finite, the
// momentum methods record their target encoder and the evaluations read either branch, and the
// trained encoder's features have not collapsed (every dimension varies over the test images).
// (fit's TestEMAResumeIsBitIdentical covers resuming with momentum copies.)
func TestPretrainPredictorMethods(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny ViT")
	}
	dataDir := ptTinyData(t)
	base := func(run string, extra ...string) []string {
		return tinyPretrainArgs(dataDir, run, append([]string{"--knn-every", "0", "--pred-hidden", "16"}, extra...)...)
	}
	for _, mode := range []string{"byol", "lwbyol", "simsiam", "lwsimsiam", "mocov3", "lwmocov3"} {
		run := filepath.Join(t.TempDir(), mode)
		if _, err := ptRunCLI(t, base(run, "--epochs", "2", "--method", mode, "--freeze-patch")...); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		recs := ptReadMetrics(t, run)
		if len(recs) != 2 || math.IsNaN(recs[1]["train_loss"]) {
			t.Fatalf("%s: metrics %v", mode, recs)
		}
		params, err := rundir.ReadParams(run)
		if err != nil {
			t.Fatal(err)
		}
		momentum := strings.Contains(mode, "byol") || strings.Contains(mode, "mocov3")
		if (params.Model.TargetScope == "/target_encoder") != momentum {
			t.Errorf("%s: target scope %q", mode, params.Model.TargetScope)
		}
		_, err = ptRunCLI(t, "knn-eval", "--checkpoint", run, "--k", "5", "--encoder", "target")
		if momentum && err != nil {
			t.Errorf("%s: knn-eval --encoder target: %v", mode, err)
		}
		if !momentum && (err == nil || !strings.Contains(err.Error(), "--encoder target")) {
			t.Errorf("%s: knn-eval --encoder target without a momentum encoder: %v", mode, err)
		}
		// The patch projection stayed at its initialisation; the blocks trained.
		ck, err := fit.LoadCheckpoint(filepath.Join(run, "checkpoints", "step-000000000008.ckpt"))
		if err != nil {
			t.Fatal(err)
		}
		vals := map[string][]float32{}
		for _, v := range ck.Variables {
			if v.Value.DType() == dtypes.Float32 {
				vals[v.ScopeAndName()] = tensors.MustCopyFlatData[float32](v.Value)
			}
		}
		if momentum {
			if !slices.Equal(vals["/encoder/patch_embed/weights"], vals["/target_encoder/patch_embed/weights"]) {
				t.Errorf("%s: the frozen patch projection differs from its momentum copy", mode)
			}
			if slices.Equal(vals["/encoder/block_00/mlp/fc1/weights"], vals["/target_encoder/block_00/mlp/fc1/weights"]) {
				t.Errorf("%s: the target did not lag the online encoder", mode)
			}
		}

		// Collapse check: per-dimension std of the test features.
		in := evalInput{EvalInput: runner.EvalInput{Checkpoint: run}, backend: testutil.Backend()}
		app := &App{Globals: &Globals{}, Log: zerolog.Nop()}
		f, err := in.features(app, 8, func(*data.Dataset) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		for d := range f.Test.D {
			var s, s2 float64
			for i := range f.Test.N {
				x := float64(f.Test.X[i*f.Test.D+d])
				s += x
				s2 += x * x
			}
			n := float64(f.Test.N)
			if std := math.Sqrt(max(0, s2/n-(s/n)*(s/n))); !(std > 1e-4) {
				t.Errorf("%s: feature %d has std %g over the test images (collapsed)", mode, d, std)
			}
		}
		f.Close()
	}

	// Multi-crop: 2 global 8-px crops and 2 local 4-px crops per image, for a predictor and a
	// contrastive method.
	for _, mode := range []string{"lwmocov3", "simlwclr"} {
		run := filepath.Join(t.TempDir(), "crops-"+mode)
		if _, err := ptRunCLI(t, base(run, "--epochs", "1", "--method", mode, "--crops", "2x8:0.5-1,2x4:0.1-0.4")...); err != nil {
			t.Fatalf("%s --crops: %v", mode, err)
		}
		if recs := ptReadMetrics(t, run); len(recs) != 1 || math.IsNaN(recs[0]["train_loss"]) {
			t.Fatalf("%s --crops: metrics %v", mode, recs)
		}
	}
	for _, bad := range [][]string{{"--method", "lwclr", "--crops", "2x8:0.5-1,2x4:0.1-0.4"}, {"--method", "byol", "--crops", "2x8:0.5-1,2x3:0.1-0.4"}, {"--method", "byol", "--crops", "2x8"}} {
		if _, err := ptRunCLI(t, base(filepath.Join(t.TempDir(), "bad"), append([]string{"--epochs", "1"}, bad...)...)...); err == nil || !strings.Contains(err.Error(), "--crops") {
			t.Errorf("%v: %v, want an error naming --crops", bad, err)
		}
	}
}
