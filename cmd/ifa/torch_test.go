package main

import (
	"bytes"
	stdctx "context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/interop"
	"github.com/ifa-toolkit/ifa/report"
	"github.com/ifa-toolkit/ifa/runner"
	"github.com/ifa-toolkit/ifa/torchio"
)

// randomTorchFile writes a safetensors state dict of model name (random values) and returns it.
func randomTorchFile(t *testing.T, dir, name string, classes int, input cnn.MapShape) (string, *torchio.StateDict) {
	t.Helper()
	m, err := interop.NewModel(name, classes, input)
	if err != nil {
		t.Fatal(err)
	}
	vars, err := interop.Variables(testutil.Backend(), m)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	sd := torchio.NewStateDict()
	for _, v := range vars {
		n := 1
		for _, d := range v.TorchShape {
			n *= d
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = r.Float32() + 0.1
		}
		sd.Set(v.Key, torchio.FromFloat32s(v.TorchShape, vals))
		if p, ok := strings.CutSuffix(v.Key, ".running_var"); ok {
			sd.Set(p+".num_batches_tracked", torchio.ScalarInt64(11))
		}
	}
	path := filepath.Join(dir, name+".safetensors")
	if err := torchio.WriteSafetensorsFile(path, sd); err != nil {
		t.Fatal(err)
	}
	return path, sd
}

// TestImportExportCommands: ifa import writes a run that ifa export turns back into the same
// tensors; ifa test accepts the run.
func TestImportExportCommands(t *testing.T) {
	dir := t.TempDir()
	file, sd := randomTorchFile(t, dir, "resnet8", 10, cnn.MapShape{H: 32, W: 32, C: 1})
	run := filepath.Join(dir, "run")
	imp := &runner.Import{Model: "resnet8", Classes: -1, Input: "28x28x1", Dataset: "fashion-mnist", File: file}
	rec, err := imp.Write(testutil.Backend(), run)
	if err != nil {
		t.Fatal(err)
	}
	if rec.CNN.NumClasses != 10 || rec.Data.Channels != 1 || rec.Data.Height != 28 {
		t.Fatalf("record %+v", rec)
	}
	out := filepath.Join(dir, "out.safetensors")
	exp := &runner.Export{Checkpoint: run, Output: out}
	if _, err := exp.Run(runner.Env{Backend: testutil.Backend()}); err != nil {
		t.Fatal(err)
	}
	back, err := torchio.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(back.State.Keys)), slices.Sorted(slices.Values(sd.Keys))) {
		t.Fatalf("exported keys differ")
	}
	for _, k := range sd.Keys {
		a, b := sd.Tensors[k], back.State.Tensors[k]
		if a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("%s differs after import and export", k)
		}
	}
	// A second import into the same run is refused.
	if _, err := imp.Write(testutil.Backend(), run); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second import: %v", err)
	}
}

// TestImportBadFiles: one line naming the file and the key, and no run directory left behind.
func TestImportBadFiles(t *testing.T) {
	dir := t.TempDir()
	input := cnn.MapShape{H: 32, W: 32, C: 3}
	good, sd := randomTorchFile(t, dir, "resnet8", 10, input)
	write := func(name string, sd *torchio.StateDict) string {
		p := filepath.Join(dir, name)
		if err := torchio.WriteSafetensorsFile(p, sd); err != nil {
			t.Fatal(err)
		}
		return p
	}
	clone := func() *torchio.StateDict {
		c := torchio.NewStateDict()
		for _, k := range sd.Keys {
			c.Set(k, sd.Tensors[k])
		}
		return c
	}
	missing := clone()
	missing.Keys = slices.DeleteFunc(missing.Keys, func(k string) bool { return k == "layer3.0.bn2.bias" })
	delete(missing.Tensors, "layer3.0.bn2.bias")
	extra := clone()
	extra.Set("layer9.weight", torchio.FromFloat32s([]int{1}, []float32{0}))
	shape := clone()
	shape.Tensors["fc.bias"] = torchio.FromFloat32s([]int{11}, make([]float32, 11))
	raw, _ := os.ReadFile(good)
	lying := filepath.Join(dir, "lying.safetensors")
	// A header that claims more data than the file holds.
	os.WriteFile(lying, raw[:len(raw)-4], 0o644)
	evil := filepath.Join(dir, "evil.pth")
	os.WriteFile(evil, []byte("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.\x80\x02}.\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R."), 0o644)
	zipRaw, err := os.ReadFile("../../torchio/testdata/plain_zip.pth")
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.pth")
	os.WriteFile(truncated, zipRaw[:len(zipRaw)-40], 0o644)
	for _, tc := range []struct {
		name, model, file, want string
	}{
		{"wrong model", "wrn_16_1", good, "is the file a different model"},
		{"missing key", "resnet8", write("missing.safetensors", missing), "key layer3.0.bn2.bias of resnet8"},
		{"extra key", "resnet8", write("extra.safetensors", extra), "unexpected key layer9.weight"},
		{"wrong shape", "resnet8", write("shape.safetensors", shape), "key fc.bias: shape [11], want [10]"},
		{"lying header", "resnet8", lying, "run past"},
		{"forbidden global", "resnet8", evil, "forbidden global os.system"},
		{"truncated zip", "resnet8", truncated, "zip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := filepath.Join(dir, "run-"+strings.ReplaceAll(tc.name, " ", "-"))
			_, err := (&runner.Import{Model: tc.model, Classes: -1, File: tc.file}).Write(testutil.Backend(), run)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line naming %s and %q", err, tc.file, tc.want)
			}
			if _, err := os.Stat(run); !os.IsNotExist(err) {
				t.Fatalf("%s left behind (%v)", run, err)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".tmp-") {
					t.Fatalf("temporary %s left behind", e.Name())
				}
			}
		})
	}
}

// TestTorchRoundTripCommands: a trained run exported to safetensors and imported back gives the
// same ifa test result as the run itself; ifa distill takes the exported file as its teacher with
// --teacher-model; ifa train --init starts from the imported weights.
func TestTorchRoundTripCommands(t *testing.T) {
	if !backendTrainsCNNs(t) {
		return
	}
	dataDir := synthFashionMNIST(t, 12, 6, 8)
	teacherDir := trainTinyTeacher(t, dataDir)
	dir := t.TempDir()
	file := filepath.Join(dir, "teacher.safetensors")
	if _, err := (&runner.Export{Checkpoint: teacherDir, Output: file}).Run(runner.Env{Backend: testutil.Backend()}); err != nil {
		t.Fatal(err)
	}
	imported := filepath.Join(dir, "imported")
	if _, err := (&runner.Import{Model: "resnet8", Classes: -1, Input: "8x8x1", Dataset: "fashion-mnist", File: file}).Write(testutil.Backend(), imported); err != nil {
		t.Fatal(err)
	}
	testJSON := func(run string) runner.TestResult {
		t.Helper()
		c := &runner.Test{Checkpoint: run, Dataset: "fashion-mnist", DataDir: dataDir, Format: "json", Batch: 4}
		r, err := c.Run(runner.Env{Backend: testutil.Backend()})
		if err != nil {
			t.Fatal(err)
		}
		return *r
	}
	a, b := testJSON(teacherDir), testJSON(imported)
	if a.Images != 6 || a.Top1 != b.Top1 || a.Top5 != b.Top5 || a.Loss != b.Loss {
		t.Fatalf("ifa test: trained run %+v, exported and imported %+v", a, b)
	}
	if m := readMetrics(t, teacherDir); m[len(m)-1]["test_top1"] != a.Top1 {
		t.Fatalf("ifa test top-1 %v, the run logged %v", a.Top1, m[len(m)-1]["test_top1"])
	}

	distillDir := filepath.Join(dir, "distill")
	cli, app := parseCLI(t, "--out", distillDir, "--seed", "2", "distill", "--teacher", file, "--teacher-model", "resnet8",
		"--teacher-input", "8x8x1", "--dataset", "fashion-mnist", "--data-dir", dataDir, "--student", "resnet8", "--method", "kd",
		"--epochs", "1", "--batch", "4", "--eval-batch", "6", "--padding", "1")
	if _, err := cli.Distill.run(stdctx.Background(), app, testutil.Backend()); err != nil {
		t.Fatal(err)
	}
	if sum, err := report.ReadSummary(distillDir); err != nil || sum.TeacherCheckpoint != file {
		t.Errorf("summary names the teacher %q (%v), want %s", sum.TeacherCheckpoint, err, file)
	}
	// The teacher in the distillation's checkpoint is the file's.
	dv, tv := checkpointVars(t, distillDir), checkpointVars(t, teacherDir)
	if !sameValues(dv["/teacher/stage_3/block_0/conv_2/weights"].Value, tv["/model/stage_3/block_0/conv_2/weights"].Value) {
		t.Fatal("the distillation's teacher differs from the file's")
	}

	// Fine-tuning with a negligible rate keeps the imported convolution weights.
	initDir := filepath.Join(dir, "init")
	cli, app = parseCLI(t, "--out", initDir, "train", "--model", "resnet8", "--dataset", "fashion-mnist", "--data-dir", dataDir,
		"--init", imported, "--epochs", "1", "--batch", "4", "--eval-batch", "6", "--lr", "1e-30", "--weight-decay", "0")
	if _, err := cli.Train.run(stdctx.Background(), app, testutil.Backend()); err != nil {
		t.Fatal(err)
	}
	iv := checkpointVars(t, initDir)
	for _, k := range []string{"/model/stem/conv/weights", "/model/stage_2/block_0/conv_1/weights", "/model/fc/weights"} {
		if iv[k].Value == nil || !sameValues(iv[k].Value, tv[k].Value) {
			t.Fatalf("--init: %s differs from the imported weights", k)
		}
	}
	// Another model is refused in one line.
	cli, app = parseCLI(t, "--out", filepath.Join(dir, "bad"), "train", "--model", "resnet14", "--dataset", "fashion-mnist",
		"--data-dir", dataDir, "--init", imported, "--epochs", "1", "--batch", "4")
	if _, err := cli.Train.run(stdctx.Background(), app, testutil.Backend()); err == nil || !strings.Contains(err.Error(), "want resnet14") {
		t.Fatalf("--init of another model: %v", err)
	}
}

// TestImportRepDistillerLegacy: a PyTorch 0.4-style RepDistiller checkpoint (legacy format, no
// num_batches_tracked, the {"epoch", "model", "accuracy", "optimizer"} wrapper with momentum
// buffers) imports; exporting it back gives the file's tensors and num_batches_tracked = 0.
func TestImportRepDistillerLegacy(t *testing.T) {
	const file = "../../torchio/testdata/rd_resnet8_legacy.pth"
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	rec, err := (&runner.Import{Model: "resnet8", Classes: -1, Input: "8x8x1", File: file}).Write(testutil.Backend(), run)
	if err != nil {
		t.Fatal(err)
	}
	if rec.CNN.NumClasses != 10 || rec.Data.Channels != 1 {
		t.Fatalf("record %+v", rec)
	}
	raw, err := os.ReadFile(filepath.Join(run, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"format": "torch-legacy"`, `"wrapper": "model"`, `"epoch": "240"`, `"accuracy": "91.5"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("config.json lacks %s", want)
		}
	}
	out := filepath.Join(dir, "out.safetensors")
	if _, err := (&runner.Export{Checkpoint: run, Output: out}).Run(runner.Env{Backend: testutil.Backend()}); err != nil {
		t.Fatal(err)
	}
	src, err := torchio.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	back, err := torchio.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	nbt := 0
	for _, k := range back.State.Keys {
		b := back.State.Tensors[k]
		if strings.HasSuffix(k, ".num_batches_tracked") {
			if v, _ := b.Int64s(); v[0] != 0 {
				t.Errorf("%s = %d, want 0", k, v[0])
			}
			nbt++
			continue
		}
		a := src.State.Tensors[k]
		if a == nil || !slices.Equal(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("%s differs from the file's", k)
		}
	}
	if nbt != 9 || len(back.State.Keys) != len(src.State.Keys)+nbt {
		t.Fatalf("%d keys exported (%d num_batches_tracked), the file has %d", len(back.State.Keys), nbt, len(src.State.Keys))
	}
}

// TestImportViT: a ViT state dict under timm's names imports with the configuration's image size
// and exports back unchanged.
func TestImportViT(t *testing.T) {
	dir := t.TempDir()
	file, sd := randomTorchFile(t, dir, "vit:nano", 10, cnn.MapShape{H: 28, W: 28, C: 1})
	run := filepath.Join(dir, "run")
	rec, err := (&runner.Import{Model: "vit:nano", Classes: -1, File: file}).Write(testutil.Backend(), run)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ViT == nil || rec.ViT.NumClasses != 10 || rec.ViT.ImageHeight != 28 || rec.ViT.Channels != 1 {
		t.Fatalf("record %+v", rec)
	}
	out := filepath.Join(dir, "out.safetensors")
	if _, err := (&runner.Export{Checkpoint: run, Output: out}).Run(runner.Env{Backend: testutil.Backend()}); err != nil {
		t.Fatal(err)
	}
	back, err := torchio.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range sd.Keys {
		if !bytes.Equal(sd.Tensors[k].Data, back.State.Tensors[k].Data) {
			t.Fatalf("%s differs after import and export", k)
		}
	}
}
