// Package rundir finds ifa run directories and the models their checkpoints hold, and loads those
// models checked against what the caller expects.
//
// A run directory, as every ifa training command writes it, holds config.json (fit.WriteConfig:
// the command's flags under "params", with the Model record that rebuilds the run's model),
// metrics.jsonl and checkpoints/step-NNNNNNNNNNNN.ckpt. Every checkpoint written since model
// records exist also names its models in its own header (fit.ModelRecord), so a checkpoint
// file copied out of its run still says what it holds.
//
// Loading goes through one place for every command that reads another run's weights (distill
// --teacher, knn-eval and linear-eval --checkpoint, --resume, and the commands to come that take
// a checkpoint): Resolve turns a run directory or checkpoint file into a checkpoint file and its
// run; Load reads it, compares the checkpoint's header record with the run's config.json and with
// what the caller wants (Want), compares the checkpoint's variables with the ones the model
// declares, and refuses any mismatch with one line that names the file, what it holds and what
// was expected. A checkpoint without a header record (written by an older ifa) still loads, with
// a warning, once its variables match the model its config.json records.
package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/vit"
)

// Model families.
const (
	FamilyViT   = "vit"
	FamilyMixer = "mixer"
	FamilyCNN   = "cnn"
)

// DataSpec is where a run's images come from and how they are normalised; it is saved in
// config.json so that evaluation sees the data the way training did.
type DataSpec struct {
	// Dataset is a known name (fashion-mnist, mnist, cifar10, cifar100) or an image-folder path.
	Dataset string `json:"dataset"`
	// Dir is where the named dataset was found ("" for the default places).
	Dir string `json:"dir,omitempty"`
	// Height, Width, Channels are the image shape the model takes.
	Height   int `json:"height"`
	Width    int `json:"width"`
	Channels int `json:"channels"`
	// Crop > 0: an image folder read with the folder recipe (data.FolderRecipe): decoded at
	// data.FolderStoreSize(Crop), trained on random resized crops and tested on the centre crop
	// of Crop×Crop (= Height×Width).
	Crop int `json:"crop,omitempty"`
	// Mean and Std are the per-channel normalisation of the test transform.
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
}

// Norm is the normalisation of the test transform.
func (s DataSpec) Norm() data.Normalize { return data.Normalize{Mean: s.Mean, Std: s.Std} }

// Model says which model a run's checkpoints hold and where its variables live: the "model"
// section of config.json's params. It rebuilds the model (Features).
type Model struct {
	// Family is FamilyViT, FamilyMixer or FamilyCNN.
	Family string `json:"family"`
	// Scope is the absolute scope of the model's variables in the checkpoint (e.g. "/encoder").
	Scope string `json:"scope"`
	// TargetScope is the absolute scope of the model's momentum (EMA) copy, for the pretraining
	// methods that keep one (byol, mocov3, lwbyol, lwmocov3: "/target_encoder"); empty otherwise.
	TargetScope string `json:"target_scope,omitempty"`
	// ViT is the ViT architecture (family vit).
	ViT *vit.Config `json:"vit,omitempty"`
	// Mixer is the MLP-Mixer architecture (family mixer).
	Mixer *vit.MixerConfig `json:"mixer,omitempty"`
	// CNN names a model of the cnn zoo and its classifier width (family cnn).
	CNN *CNN `json:"cnn,omitempty"`
	// Data is the data the model was trained on and its test transform.
	Data DataSpec `json:"data"`
}

// CNN identifies a CNN of the zoo (cnn.Get) and the classifier it was built with.
type CNN struct {
	Name       string `json:"name"`
	NumClasses int    `json:"num_classes"`
}

// Validate checks that the record names a buildable model.
func (m Model) Validate() error {
	switch m.Family {
	case FamilyViT:
		if m.ViT == nil {
			return errors.New("model record: family vit without a vit configuration")
		}
		return m.ViT.Validate()
	case FamilyMixer:
		if m.Mixer == nil {
			return errors.New("model record: family mixer without a mixer configuration")
		}
		return m.Mixer.Validate()
	case FamilyCNN:
		if m.CNN == nil {
			return errors.New("model record: family cnn without a cnn section")
		}
		_, err := cnn.Get(m.CNN.Name)
		return err
	}
	return fmt.Errorf("model record: unknown model family %q (want %s, %s or %s)", m.Family, FamilyViT, FamilyMixer, FamilyCNN)
}

// Features builds the model's graph in ctx's current scope (the record's Scope stripped). It is a
// graph-building function: it panics on an invalid record (Validate first).
func (m Model) Features(ctx *context.Context, images *graph.Node) backbone.Features {
	switch m.Family {
	case FamilyViT:
		v, err := vit.New(*m.ViT)
		if err != nil {
			panic(err)
		}
		return v.Features(ctx, images)
	case FamilyMixer:
		v, err := vit.NewMixer(*m.Mixer)
		if err != nil {
			panic(err)
		}
		return v.Features(ctx, images)
	case FamilyCNN:
		spec, err := cnn.Get(m.CNN.Name)
		if err != nil {
			panic(err)
		}
		return spec.Build(ctx, images, m.CNN.NumClasses)
	}
	panic(fmt.Errorf("model record: unknown model family %q", m.Family))
}

// Name is the model's name as the commands take it (ModelNamed): the zoo name of a CNN
// ("resnet8"), "vit:" or "mixer:" and the configuration's name ("vit:nano", "mixer:nano_7").
func (m Model) Name() string {
	switch {
	case m.CNN != nil:
		return m.CNN.Name
	case m.ViT != nil:
		return "vit:" + m.ViT.Name
	case m.Mixer != nil:
		return "mixer:" + m.Mixer.Name
	}
	return m.Family
}

// TokenGrid returns the grid (rows, columns) of a ViT's or MLP-Mixer's token taps, or ok false for
// a CNN, whose taps are maps already.
func (m Model) TokenGrid() (rows, cols int, ok bool) {
	switch {
	case m.ViT != nil:
		rows, cols = m.ViT.Grid()
		return rows, cols, true
	case m.Mixer != nil:
		rows, cols = m.Mixer.Grid()
		return rows, cols, true
	}
	return 0, 0, false
}

// CheckModelName reports whether name names a model ModelNamed can build: a CNN of the zoo,
// vit:CONFIG or mixer:CONFIG.
func CheckModelName(name string) error {
	switch {
	case strings.HasPrefix(name, "vit:"):
		_, err := vit.Get(strings.TrimPrefix(name, "vit:"))
		return err
	case strings.HasPrefix(name, "mixer:"):
		_, err := vit.GetMixer(strings.TrimPrefix(name, "mixer:"))
		return err
	}
	if _, err := cnn.Get(name); err != nil {
		return fmt.Errorf("%w, or vit:CONFIG (%s) or mixer:CONFIG (%s)", err,
			strings.Join(vit.Names(), ", "), strings.Join(vit.MixerNames(), ", "))
	}
	return nil
}

// Lightweight reports whether the model is a CNN of a family RepDistiller trains at learning rate
// 0.01 (cnn.Family.Lightweight: MobileNetV2, ShuffleNetV1/V2).
func (m Model) Lightweight() bool {
	if m.CNN == nil {
		return false
	}
	spec, err := cnn.Get(m.CNN.Name)
	return err == nil && spec.Family().Lightweight()
}

// ModelNamed returns the record of the model name names, with a classifier of classes classes, for
// images of data's shape, its variables under scope: a CNN of the zoo (cnn.Get), "vit:CONFIG"
// (vit.Get, e.g. vit:nano, vit:ti_4) or "mixer:CONFIG" (vit.GetMixer, e.g. mixer:nano). A ViT or
// Mixer takes the data's image size, so the patch size must divide it.
func ModelNamed(name string, classes int, data DataSpec, scope string) (Model, error) {
	m := Model{Scope: scope, Data: data}
	switch {
	case strings.HasPrefix(name, "vit:"):
		cfg, err := vit.Get(strings.TrimPrefix(name, "vit:"))
		if err != nil {
			return m, err
		}
		cfg = cfg.WithImage(data.Height, data.Width, data.Channels).WithClasses(classes)
		m.Family, m.ViT = FamilyViT, &cfg
	case strings.HasPrefix(name, "mixer:"):
		cfg, err := vit.GetMixer(strings.TrimPrefix(name, "mixer:"))
		if err != nil {
			return m, err
		}
		cfg = cfg.WithImage(data.Height, data.Width, data.Channels).WithClasses(classes)
		m.Family, m.Mixer = FamilyMixer, &cfg
	default:
		if err := CheckModelName(name); err != nil {
			return m, err
		}
		m.Family, m.CNN = FamilyCNN, &CNN{Name: name, NumClasses: classes}
	}
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("model %s for %dx%dx%d images: %w", name, data.Height, data.Width, data.Channels, err)
	}
	return m, nil
}

// Classes is the width of the model's classifier (0 for an encoder without one).
func (m Model) Classes() int {
	switch {
	case m.CNN != nil:
		return m.CNN.NumClasses
	case m.ViT != nil:
		return m.ViT.NumClasses
	case m.Mixer != nil:
		return m.Mixer.NumClasses
	}
	return 0
}

// WithClasses returns the model with a classifier of classes classes (0: the encoder alone).
func (m Model) WithClasses(classes int) Model {
	switch {
	case m.CNN != nil:
		c := *m.CNN
		c.NumClasses = classes
		m.CNN = &c
	case m.ViT != nil:
		c := m.ViT.WithClasses(classes)
		m.ViT = &c
	case m.Mixer != nil:
		c := m.Mixer.WithClasses(classes)
		m.Mixer = &c
	}
	return m
}

// ClassifierScope is the scope of the model's classifier under the model's own: "fc" for a CNN,
// "head" for a ViT or MLP-Mixer.
func (m Model) ClassifierScope() string {
	if m.Family == FamilyCNN {
		return "fc"
	}
	return vit.ScopeHead
}

// String describes the model and its data, e.g. "cnn resnet8 (10 classes) on fashion-mnist".
func (m Model) String() string {
	switch {
	case m.ViT != nil:
		return fmt.Sprintf("vit %s on %s", m.ViT, m.Data.Dataset)
	case m.Mixer != nil:
		return fmt.Sprintf("%s on %s", m.Mixer, m.Data.Dataset)
	case m.CNN != nil:
		return fmt.Sprintf("cnn %s (%d classes) on %s", m.CNN.Name, m.CNN.NumClasses, m.Data.Dataset)
	}
	return m.Family
}

// Record is the model's record for a checkpoint header (fit.Job.Models); role says what the run
// uses it as ("model", "student", "teacher", "encoder").
func (m Model) Record(role string) fit.ModelRecord {
	r := fit.ModelRecord{Scope: m.Scope, Role: role, Family: m.Family, Classes: m.Classes(),
		Input: []int{m.Data.Height, m.Data.Width, m.Data.Channels}}
	switch {
	case m.CNN != nil:
		r.Name = m.CNN.Name
	case m.ViT != nil:
		r.Name = m.ViT.Name
		r.Config, _ = json.Marshal(m.ViT)
	case m.Mixer != nil:
		r.Name = m.Mixer.Name
		r.Config, _ = json.Marshal(m.Mixer)
	}
	return r
}

// FromRecord rebuilds a model from a checkpoint's header record: what a checkpoint without its
// run's config.json still says. The data section has the input shape only.
func FromRecord(r fit.ModelRecord) (Model, error) {
	m := Model{Family: r.Family, Scope: r.Scope}
	if len(r.Input) == 3 {
		m.Data = DataSpec{Height: r.Input[0], Width: r.Input[1], Channels: r.Input[2]}
	}
	switch r.Family {
	case FamilyCNN:
		m.CNN = &CNN{Name: r.Name, NumClasses: r.Classes}
	case FamilyViT:
		var cfg vit.Config
		if err := json.Unmarshal(r.Config, &cfg); err != nil {
			return m, fmt.Errorf("model record %s: vit configuration: %w", r, err)
		}
		m.ViT = &cfg
	case FamilyMixer:
		var cfg vit.MixerConfig
		if err := json.Unmarshal(r.Config, &cfg); err != nil {
			return m, fmt.Errorf("model record %s: mixer configuration: %w", r, err)
		}
		m.Mixer = &cfg
	}
	return m, m.Validate()
}

// Params is what config.json's "params" holds for every ifa training command.
type Params struct {
	// Command is the command line's command ("pretrain vit", "train", ...).
	Command string `json:"command"`
	// Model is the model the run's checkpoints hold.
	Model Model `json:"model"`
	// Flags are the command's flags (its kong struct).
	Flags any `json:"flags"`
	// MethodParams are a distillation's method parameters as the run reads them: every key of
	// the method's parameter table, with the value the flags (or --param) set or its default,
	// and any other --param given.
	MethodParams map[string]any `json:"method_params,omitempty"`
}

// WriteConfig writes runDir/config.json. On resume it first checks that the model has not
// changed.
func WriteConfig(runDir string, params Params, cfg fit.Config, resume bool) error {
	if resume {
		old, err := ReadParams(runDir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil && !reflect.DeepEqual(normalize(old.Model), normalize(params.Model)) {
			return fmt.Errorf("--resume: the model or data flags differ from the run's %s (%s vs %s)",
				filepath.Join(runDir, fit.ConfigFile), old.Model, params.Model)
		}
	}
	return fit.WriteConfig(runDir, params, cfg)
}

// normalize makes a record comparable after a JSON round trip.
func normalize(m Model) Model {
	b, _ := json.Marshal(m)
	var out Model
	_ = json.Unmarshal(b, &out)
	return out
}

// storedParams is the part of config.json the loaders read.
type storedParams struct {
	Params struct {
		Command string `json:"command"`
		Model   Model  `json:"model"`
	} `json:"params"`
}

// ReadParams reads the command and the model record of runDir/config.json (Flags stays nil). A
// missing file gives an error wrapping fs.ErrNotExist.
func ReadParams(runDir string) (Params, error) {
	path := filepath.Join(runDir, fit.ConfigFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return Params{}, err
	}
	var sp storedParams
	if err := json.Unmarshal(raw, &sp); err != nil {
		return Params{}, fmt.Errorf("%s: %w", path, err)
	}
	return Params{Command: sp.Params.Command, Model: sp.Params.Model}, nil
}
