package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/vit"
)

func cnnModel(name string, classes int) Model {
	return Model{Family: FamilyCNN, Scope: "/model", CNN: &CNN{Name: name, NumClasses: classes},
		Data: DataSpec{Dataset: "fashion-mnist", Height: 8, Width: 8, Channels: 1}}
}

func vitModel(t *testing.T) Model {
	t.Helper()
	cfg, err := vit.Get("nano")
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.WithImage(8, 8, 1)
	return Model{Family: FamilyViT, Scope: "/encoder", ViT: &cfg, Data: DataSpec{Dataset: "fashion-mnist", Height: 8, Width: 8, Channels: 1}}
}

// writeRun initialises m's variables (one forward pass), saves them as runDir's step-1
// checkpoint (with m's header record unless legacy) and writes a config.json recording
// configured (m when nil; no config.json when configured is the zero Model).
func writeRun(t *testing.T, runDir string, m Model, legacy bool, configured *Model) string {
	t.Helper()
	ctx := context.New()
	if err := ctx.SetRNGStateFromSeed(1); err != nil {
		t.Fatal(err)
	}
	exec, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, images *graph.Node) *graph.Node {
		return m.Features(ctx.InAbsPath(m.Scope), images).Pooled
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	if _, err := exec.Exec(tensors.FromShape(shapes.Make(dtypes.Float32, 2, m.Data.Height, m.Data.Width, m.Data.Channels))); err != nil {
		t.Fatal(err)
	}
	var recs []fit.ModelRecord
	if !legacy {
		recs = append(recs, m.Record("model"))
	}
	path := filepath.Join(runDir, "checkpoints", "step-000000000001.ckpt")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fit.SaveCheckpoint(path, ctx, fit.LoopState{GlobalStep: 1}, recs...); err != nil {
		t.Fatal(err)
	}
	if configured == nil {
		configured = &m
	}
	if configured.Family != "" {
		if err := WriteConfig(runDir, Params{Command: "train", Model: *configured}, fit.Config{}, false); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// oneLine fails unless err is a single line mentioning every want and none of GoMLX's internals.
func oneLine(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", want)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Contains(msg, "reuse variable") || strings.Contains(msg, "InvalidDType") {
		t.Errorf("error is not one clean line: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
}

func TestLoadChecksTheModel(t *testing.T) {
	backend := testutil.Backend()
	resnet8, resnet20 := cnnModel("resnet8", 10), cnnModel("resnet20", 10)
	vitM := vitModel(t)
	for _, tc := range []struct {
		name       string
		holds      Model
		legacy     bool
		configured *Model
		want       Want
		errs       []string // nil: loads
		warn       string
	}{
		{name: "same model", holds: resnet8},
		{name: "resnet20 in a resnet8 run", holds: resnet20, configured: &resnet8,
			errs: []string{"step-000000000001.ckpt holds cnn resnet20 (10 classes, 8x8x1 input)", "config.json records cnn resnet8"}},
		{name: "legacy resnet20 in a resnet8 run", holds: resnet20, legacy: true, configured: &resnet8,
			errs: []string{"step-000000000001.ckpt does not hold cnn resnet8", "config.json records", "is not part of that model"}},
		{name: "legacy resnet8 in a resnet20 run", holds: resnet8, legacy: true, configured: &resnet20,
			errs: []string{"does not hold cnn resnet20", "it lacks /model/"}},
		{name: "legacy, 100 classes in a 10-class run", holds: cnnModel("resnet8", 100), legacy: true, configured: &resnet8,
			errs: []string{"does not hold cnn resnet8", "/model/fc/"}},
		{name: "legacy same model", holds: resnet8, legacy: true, warn: "has no model record"},
		{name: "ViT as a teacher", holds: vitM, want: Want{Flag: "--teacher", Classifier: true, What: "a classifier"},
			errs: []string{"--teacher ", "holds vit nano (no classifier, 8x8x1 input), want a classifier"}},
		{name: "wrong model wanted", holds: resnet8, want: Want{Flag: "--init", Model: &resnet20},
			errs: []string{"--init ", "holds cnn resnet8", "want cnn resnet20"}},
		{name: "no config.json: the header's record", holds: resnet8, configured: &Model{}},
		{name: "no config.json, no record", holds: resnet8, legacy: true, configured: &Model{},
			errs: []string{"no config.json beside it and no model record in it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDir := t.TempDir()
			file := writeRun(t, runDir, tc.holds, tc.legacy, tc.configured)
			l, err := Load(backend, runDir, tc.want)
			if tc.errs != nil {
				oneLine(t, err, append(tc.errs, file)...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.File != file || l.Model.Name() != tc.holds.Name() {
				t.Errorf("loaded %s holding %s", l.File, l.Model.Name())
			}
			if got := strings.Join(l.Warnings, "\n"); (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
				t.Errorf("warnings %q, want %q", got, tc.warn)
			}
			ctx, err := l.Context()
			if err != nil {
				t.Fatal(err)
			}
			if ctx.GetVariableByScopeAndName("/stem/conv", "weights") == nil {
				t.Error("the model's variables are not at the context's root")
			}
		})
	}
}

func TestCheckResume(t *testing.T) {
	backend := testutil.Backend()
	resnet8, resnet20 := cnnModel("resnet8", 10), cnnModel("resnet20", 10)
	for _, legacy := range []bool{false, true} {
		runDir := t.TempDir()
		file := writeRun(t, runDir, resnet20, legacy, nil)
		if err := CheckResume(backend, runDir, resnet20); err != nil {
			t.Errorf("legacy %v: the same model is refused: %v", legacy, err)
		}
		err := CheckResume(backend, runDir, resnet8)
		oneLine(t, err, "--resume: ", file, "cnn resnet8", "the flags describe")
	}
	if err := CheckResume(backend, t.TempDir(), resnet8); err != nil {
		t.Errorf("a run without checkpoints: %v", err)
	}
}

// BenchmarkDeclared is what the variable check adds to every load: building the model's graph
// (not compiling it) to list the variables it declares.
func BenchmarkDeclared(b *testing.B) {
	cfg, err := vit.Get("s")
	if err != nil {
		b.Fatal(err)
	}
	cfg = cfg.WithImage(32, 32, 3).WithPatch(4)
	data := DataSpec{Height: 32, Width: 32, Channels: 3}
	for _, m := range []Model{
		{Family: FamilyCNN, Scope: "/model", CNN: &CNN{Name: "resnet32x4", NumClasses: 100}, Data: data},
		{Family: FamilyViT, Scope: "/encoder", ViT: &cfg, Data: data},
	} {
		b.Run(m.Name()[:min(len(m.Name()), 10)], func(b *testing.B) {
			for b.Loop() {
				if _, err := Declared(testutil.Backend(), m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWithClassesAndClassifierScope: WithClasses changes only the classifier's width (the copy's,
// not the original's) and ClassifierScope names the layer each family's classifier lives in.
func TestWithClassesAndClassifierScope(t *testing.T) {
	mixerCfg, err := vit.GetMixer("nano")
	if err != nil {
		t.Fatal(err)
	}
	mixer := Model{Family: FamilyMixer, Scope: "/model", Mixer: &mixerCfg, Data: DataSpec{Height: 8, Width: 8, Channels: 1}}
	for _, c := range []struct {
		m     Model
		scope string
	}{{cnnModel("resnet8", 10), "fc"}, {vitModel(t), "head"}, {mixer, "head"}} {
		before := c.m.Record("")
		w := c.m.WithClasses(7)
		if w.Classes() != 7 || c.m.Record("").Classes != before.Classes {
			t.Fatalf("%s: WithClasses(7) has %d classes, the original now %d (was %d)", c.m, w.Classes(), c.m.Classes(), before.Classes)
		}
		if back := w.WithClasses(before.Classes).Record(""); !back.SameModel(before) {
			t.Fatalf("%s: WithClasses there and back gives %s", c.m, back)
		}
		if w.WithClasses(before.Classes + 1).Record("").SameModel(before) {
			t.Fatalf("%s: another width is the same model", c.m)
		}
		if got := c.m.ClassifierScope(); got != c.scope {
			t.Fatalf("%s: classifier scope %q, want %q", c.m, got, c.scope)
		}
	}
}
