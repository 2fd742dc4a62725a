package fit

import (
	"bufio"
	"bytes"
	stdctx "context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/atomicfile"
)

// Checkpoint file format (version 1), all integers little-endian:
//
//	offset 0        8 bytes   magic "IFACKPT1"
//	offset 8        4 bytes   uint32 H, the length of the JSON header
//	offset 12       H bytes   JSON header: {"version":1, "state":LoopState, "data_bytes":N,
//	                          "variables":[{"scope","name","dtype","shape","trainable","offset","bytes"}],
//	                          "models":[ModelRecord...]}
//	offset 12+H     N bytes   the variables' raw values, row-major, little-endian, concatenated in
//	                          header order; "offset" is relative to the start of this section
//	offset 12+H+N   32 bytes  SHA-256 of every byte before it
//
// "dtype" is GoMLX's dtype name (e.g. "Float32", "Int64", "Uint64"); "scope" is the absolute
// scope ("/" for the root, where the RNG state "#rngState" lives). Every context variable is
// saved — model parameters, non-trainable state (batch-norm statistics, memory banks), optimiser
// state under OptimizerScope and the RNG state — together with the loop state.
//
// "models" (optional) records which models the variables belong to (ModelRecord: family, name,
// configuration, input shape, class count and scope), so that a loader can refuse a checkpoint
// of another model before touching its variables; checkpoints written before it was added have
// none and still load. Readers ignore header keys they do not know, so new optional keys keep
// the format at version 1.
const (
	checkpointMagic   = "IFACKPT1"
	checkpointVersion = 1
	checkpointExt     = ".ckpt"
	checkpointsDir    = "checkpoints"
	checksumSize      = sha256.Size
	prefixSize        = len(checkpointMagic) + 4
)

// LoopState is where the training loop stands; it is saved in every checkpoint.
type LoopState struct {
	// Epoch is the 0-based epoch in progress; when StepInEpoch is 0 it is also the number of
	// completed epochs.
	Epoch int `json:"epoch"`
	// StepInEpoch is the number of batches of Epoch already consumed.
	StepInEpoch int `json:"step_in_epoch"`
	// GlobalStep is the number of optimiser steps taken in the whole run.
	GlobalStep int64 `json:"global_step"`
	// BestMetric is the best (highest) value of Config.BestMetric seen so far, at BestEpoch
	// (1-based); valid only when HasBest.
	BestMetric     float64 `json:"best_metric"`
	BestMetricName string  `json:"best_metric_name,omitempty"`
	BestEpoch      int     `json:"best_epoch,omitempty"`
	HasBest        bool    `json:"has_best"`
	// Partial sums of the epoch in progress, so that a mid-epoch resume reports the same epoch means.
	EpochSums   map[string]float64 `json:"epoch_sums,omitempty"`
	EpochImages int64              `json:"epoch_images,omitempty"`
}

// SavedVariable is one variable of a checkpoint.
type SavedVariable struct {
	Scope     string
	Name      string
	Trainable bool
	Value     *tensors.Tensor
}

// ScopeAndName returns the variable's absolute path, e.g. "/model/dense_0/weights".
func (v SavedVariable) ScopeAndName() string { return context.JoinScope(v.Scope, v.Name) }

// Checkpoint is a checkpoint read from disk.
type Checkpoint struct {
	Path      string
	State     LoopState
	Variables []SavedVariable
	// Models are the header's model records (nil for a checkpoint written before they existed).
	Models []ModelRecord
}

// Model returns the record of the model whose variables live at scope, if the header has one.
func (ck *Checkpoint) Model(scope string) (ModelRecord, bool) { return findModel(ck.Models, scope) }

// ModelRecord says which model a checkpoint's variables under Scope belong to. It is written in
// the checkpoint's header, so the file describes itself: a loader compares it with the model it
// expects and refuses another one with a message naming both.
type ModelRecord struct {
	// Scope is the absolute scope of the model's variables, e.g. "/model", "/student", "/encoder".
	Scope string `json:"scope"`
	// Role is what the run used the model as, e.g. "model", "student", "teacher" or "encoder".
	Role string `json:"role,omitempty"`
	// Family is the model family ("cnn", "vit") and Name the model's name in it ("resnet8",
	// "nano").
	Family string `json:"family"`
	Name   string `json:"name"`
	// Config is the family's full configuration (a ViT's vit.Config) when the name alone does not
	// fix the architecture.
	Config json.RawMessage `json:"config,omitempty"`
	// Input is the image shape [H, W, C] the model takes.
	Input []int `json:"input,omitempty"`
	// Classes is the width of the model's classifier; 0 for an encoder without one.
	Classes int `json:"classes,omitempty"`
}

// String describes the model in a few words, e.g. "cnn resnet8 (10 classes, 28x28x1 input)".
func (m ModelRecord) String() string {
	var parts []string
	if m.Classes > 0 {
		parts = append(parts, fmt.Sprintf("%d classes", m.Classes))
	} else {
		parts = append(parts, "no classifier")
	}
	if len(m.Input) == 3 {
		parts = append(parts, fmt.Sprintf("%dx%dx%d input", m.Input[0], m.Input[1], m.Input[2]))
	}
	return fmt.Sprintf("%s %s (%s)", m.Family, m.Name, strings.Join(parts, ", "))
}

// SameModel reports whether m and o describe the same architecture (family, name, configuration,
// input shape and classes; the scope and role may differ).
func (m ModelRecord) SameModel(o ModelRecord) bool {
	return m.Family == o.Family && m.Name == o.Name && m.Classes == o.Classes && slices.Equal(m.Input, o.Input) &&
		sameJSON(m.Config, o.Config)
}

// sameJSON compares two JSON documents by value (key order and spacing aside); empty equals empty.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func findModel(models []ModelRecord, scope string) (ModelRecord, bool) {
	scope = absScope(scope)
	for _, m := range models {
		if absScope(m.Scope) == scope {
			return m, true
		}
	}
	return ModelRecord{}, false
}

type headerVar struct {
	Scope     string `json:"scope"`
	Name      string `json:"name"`
	DType     string `json:"dtype"`
	Shape     []int  `json:"shape"`
	Trainable bool   `json:"trainable"`
	Offset    int64  `json:"offset"`
	Bytes     int64  `json:"bytes"`
}

type header struct {
	Version   int           `json:"version"`
	State     LoopState     `json:"state"`
	DataBytes int64         `json:"data_bytes"`
	Variables []headerVar   `json:"variables"`
	Models    []ModelRecord `json:"models,omitempty"`
}

// tempPrefix starts the name of a checkpoint being written; such a file left behind by a killed
// process is removed by RemoveTempCheckpoints.
const tempPrefix = atomicfile.TempPrefix

// ErrCheckpointAborted is wrapped by the error of a checkpoint write abandoned because its abort
// context was cancelled; the temporary file is removed and the previous checkpoints are intact.
var ErrCheckpointAborted = errors.New("checkpoint write abandoned")

// SaveCheckpoint writes every variable of ctx (which must all have values), state and the model
// records to path, atomically: a temporary file in the same directory is written, synced and
// renamed over path, and the directory is synced. A reader sees either the old file or the
// complete new one.
func SaveCheckpoint(path string, ctx *context.Context, state LoopState, models ...ModelRecord) error {
	return SaveCheckpointAbortable(nil, path, ctx, state, models...)
}

// SaveCheckpointAbortable is SaveCheckpoint that gives up as soon as abort is cancelled (checked
// before the file is created and between writes): the temporary file is removed, path is left as
// it was and the error wraps ErrCheckpointAborted. A nil abort never cancels.
func SaveCheckpointAbortable(abort stdctx.Context, path string, ctx *context.Context, state LoopState, models ...ModelRecord) (err error) {
	aborted := func() error {
		if abort != nil && abort.Err() != nil {
			return fmt.Errorf("fit: checkpoint %s: %w", path, ErrCheckpointAborted)
		}
		return nil
	}
	if err := aborted(); err != nil {
		return err
	}
	h := header{Version: checkpointVersion, State: state, Models: models}
	var vals []*tensors.Tensor
	var offset int64
	for v := range ctx.IterVariables() {
		if !v.HasValue() {
			return fmt.Errorf("fit: checkpoint %s: variable %s has no value", path, v.ScopeAndName())
		}
		val, err := v.Value()
		if err != nil {
			return fmt.Errorf("fit: checkpoint %s: variable %s: %w", path, v.ScopeAndName(), err)
		}
		n := int64(v.Shape().Memory())
		h.Variables = append(h.Variables, headerVar{
			Scope: v.Scope(), Name: v.Name(), DType: v.DType().String(), Shape: slices.Clone(v.Shape().Dimensions),
			Trainable: v.Trainable, Offset: offset, Bytes: n,
		})
		if h.Variables[len(h.Variables)-1].Shape == nil {
			h.Variables[len(h.Variables)-1].Shape = []int{}
		}
		vals = append(vals, val)
		offset += n
	}
	h.DataBytes = offset
	hdr, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("fit: checkpoint %s: header: %w", path, err)
	}

	tmp, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("fit: checkpoint %w", err)
	}
	defer tmp.Abort()
	sum := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(tmp, sum), 1<<20)
	var prefix [prefixSize]byte
	copy(prefix[:], checkpointMagic)
	binary.LittleEndian.PutUint32(prefix[len(checkpointMagic):], uint32(len(hdr)))
	if _, err = w.Write(prefix[:]); err != nil {
		return fmt.Errorf("fit: checkpoint %s: %w", path, err)
	}
	if _, err = w.Write(hdr); err != nil {
		return fmt.Errorf("fit: checkpoint %s: %w", path, err)
	}
	for i, val := range vals {
		if err = aborted(); err != nil {
			return err
		}
		if val.Size() == 0 {
			continue
		}
		var werr error
		if err = val.ConstBytes(func(data []byte) { _, werr = w.Write(data) }); err == nil {
			err = werr
		}
		if err != nil {
			return fmt.Errorf("fit: checkpoint %s: variable %s/%s: %w", path, h.Variables[i].Scope, h.Variables[i].Name, err)
		}
	}
	if err = w.Flush(); err != nil {
		return fmt.Errorf("fit: checkpoint %s: %w", path, err)
	}
	if _, err = tmp.Write(sum.Sum(nil)); err != nil {
		return fmt.Errorf("fit: checkpoint %s: %w", path, err)
	}
	if err = aborted(); err != nil {
		return err
	}
	if err = tmp.Commit(0o644); err != nil {
		return fmt.Errorf("fit: checkpoint %w", err)
	}
	return nil
}

// ErrCorruptCheckpoint is wrapped by every error about a checkpoint file that is truncated,
// fails its checksum or cannot be parsed.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint")

// LoadCheckpoint reads and verifies a checkpoint file (see the format above). A truncated file,
// a checksum mismatch or a malformed header gives an error that names the file and wraps
// ErrCorruptCheckpoint.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fit: checkpoint %s: %w", path, err)
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("fit: checkpoint %s: %w: %s", path, ErrCorruptCheckpoint, fmt.Sprintf(format, args...))
	}
	size := int64(len(raw))
	if size < int64(prefixSize) {
		return nil, corrupt("truncated: %d bytes, shorter than the %d-byte prefix", size, prefixSize)
	}
	if string(raw[:len(checkpointMagic)]) != checkpointMagic {
		return nil, corrupt("not an ifa checkpoint (bad magic %q)", raw[:len(checkpointMagic)])
	}
	hlen := int64(binary.LittleEndian.Uint32(raw[len(checkpointMagic):prefixSize]))
	var h header
	hdrErr := error(nil)
	if int64(prefixSize)+hlen > size {
		hdrErr = corrupt("truncated: %d bytes, the header alone needs %d", size, int64(prefixSize)+hlen)
	} else if err := json.Unmarshal(raw[prefixSize:int64(prefixSize)+hlen], &h); err != nil {
		hdrErr = corrupt("malformed header: %v", err)
	}
	if hdrErr == nil {
		want := int64(prefixSize) + hlen + h.DataBytes + checksumSize
		if size < want {
			return nil, corrupt("truncated: %d bytes, want %d", size, want)
		}
		if size > want {
			return nil, corrupt("%d unexpected trailing bytes", size-want)
		}
	}
	if size >= int64(prefixSize+checksumSize) {
		got := sha256.Sum256(raw[:size-checksumSize])
		if !bytes.Equal(got[:], raw[size-checksumSize:]) {
			if hdrErr != nil {
				return nil, hdrErr
			}
			return nil, corrupt("checksum mismatch: the file is damaged")
		}
	}
	if hdrErr != nil {
		return nil, hdrErr
	}
	if h.Version != checkpointVersion {
		return nil, fmt.Errorf("fit: checkpoint %s: format version %d, this build reads version %d", path, h.Version, checkpointVersion)
	}
	data := raw[int64(prefixSize)+hlen : size-checksumSize]
	ck := &Checkpoint{Path: path, State: h.State, Models: h.Models}
	for _, hv := range h.Variables {
		dt, err := dtypes.DTypeString(hv.DType)
		if err != nil {
			return nil, corrupt("variable %s: unknown dtype %q", context.JoinScope(hv.Scope, hv.Name), hv.DType)
		}
		shape := shapes.Make(dt, hv.Shape...)
		if int64(shape.Memory()) != hv.Bytes || hv.Offset < 0 || hv.Offset+hv.Bytes > int64(len(data)) {
			return nil, corrupt("variable %s: shape %s does not match its %d bytes at offset %d",
				context.JoinScope(hv.Scope, hv.Name), shape, hv.Bytes, hv.Offset)
		}
		t := tensors.FromShape(shape)
		if hv.Bytes > 0 {
			src := data[hv.Offset : hv.Offset+hv.Bytes]
			if err := t.MutableBytes(func(dst []byte) { copy(dst, src) }); err != nil {
				return nil, fmt.Errorf("fit: checkpoint %s: variable %s: %w", path, context.JoinScope(hv.Scope, hv.Name), err)
			}
		}
		ck.Variables = append(ck.Variables, SavedVariable{Scope: hv.Scope, Name: hv.Name, Trainable: hv.Trainable, Value: t})
	}
	return ck, nil
}

// CheckpointInfo is what a checkpoint's header says, read without its variables' values.
type CheckpointInfo struct {
	Path   string
	State  LoopState
	Models []ModelRecord
	// Variables lists every variable: absolute scope, name, dtype and shape.
	Variables []VariableInfo
}

// VariableInfo is one variable of a checkpoint's header.
type VariableInfo struct {
	Scope     string
	Name      string
	Shape     shapes.Shape
	Trainable bool
}

// ScopeAndName returns the variable's absolute path, e.g. "/model/dense_0/weights".
func (v VariableInfo) ScopeAndName() string { return context.JoinScope(v.Scope, v.Name) }

// Model returns the record of the model whose variables live at scope, if the header has one.
func (ci *CheckpointInfo) Model(scope string) (ModelRecord, bool) { return findModel(ci.Models, scope) }

// ReadCheckpointInfo reads only the header of a checkpoint file: the loop state, the model
// records and the variables' names and shapes. It checks the magic, the header and the file's
// length but not the checksum (LoadCheckpoint does), so it is cheap on large files.
func ReadCheckpointInfo(path string) (*CheckpointInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fit: checkpoint %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("fit: checkpoint %s: %w", path, err)
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("fit: checkpoint %s: %w: %s", path, ErrCorruptCheckpoint, fmt.Sprintf(format, args...))
	}
	size := st.Size()
	var prefix [prefixSize]byte
	if _, err := io.ReadFull(f, prefix[:]); err != nil {
		return nil, corrupt("truncated: %d bytes, shorter than the %d-byte prefix", size, prefixSize)
	}
	if string(prefix[:len(checkpointMagic)]) != checkpointMagic {
		return nil, corrupt("not an ifa checkpoint (bad magic %q)", prefix[:len(checkpointMagic)])
	}
	hlen := int64(binary.LittleEndian.Uint32(prefix[len(checkpointMagic):]))
	if int64(prefixSize)+hlen > size {
		return nil, corrupt("truncated: %d bytes, the header alone needs %d", size, int64(prefixSize)+hlen)
	}
	raw := make([]byte, hlen)
	if _, err := io.ReadFull(f, raw); err != nil {
		return nil, fmt.Errorf("fit: checkpoint %s: %w", path, err)
	}
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, corrupt("malformed header: %v", err)
	}
	if want := int64(prefixSize) + hlen + h.DataBytes + checksumSize; size != want {
		return nil, corrupt("%d bytes, want %d", size, want)
	}
	if h.Version != checkpointVersion {
		return nil, fmt.Errorf("fit: checkpoint %s: format version %d, this build reads version %d", path, h.Version, checkpointVersion)
	}
	info := &CheckpointInfo{Path: path, State: h.State, Models: h.Models}
	for _, hv := range h.Variables {
		dt, err := dtypes.DTypeString(hv.DType)
		if err != nil {
			return nil, corrupt("variable %s: unknown dtype %q", context.JoinScope(hv.Scope, hv.Name), hv.DType)
		}
		info.Variables = append(info.Variables, VariableInfo{Scope: hv.Scope, Name: hv.Name, Shape: shapes.Make(dt, hv.Shape...), Trainable: hv.Trainable})
	}
	return info, nil
}

// Info returns the header information of a loaded checkpoint.
func (ck *Checkpoint) Info() *CheckpointInfo {
	info := &CheckpointInfo{Path: ck.Path, State: ck.State, Models: ck.Models}
	for _, v := range ck.Variables {
		info.Variables = append(info.Variables, VariableInfo{Scope: v.Scope, Name: v.Name, Shape: v.Value.Shape(), Trainable: v.Trainable})
	}
	return info
}

// RemoveTempCheckpoints deletes the temporary files of unfinished checkpoint writes (".tmp-*" in
// the run's checkpoints folder, left by a process killed while writing) and returns their paths.
// Finished checkpoints are never touched.
func RemoveTempCheckpoints(runDir string) ([]string, error) {
	temps, err := checkpointDirFiles(runDir, func(name string) bool { return strings.HasPrefix(name, tempPrefix) })
	var removed []string
	for _, p := range temps {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("fit: removing the unfinished checkpoint %s: %w", p, err)
		}
		removed = append(removed, p)
	}
	return removed, err
}

// checkpointDirFiles lists the regular files of runDir's checkpoints folder whose names match, in
// name order; a missing folder has none.
func checkpointDirFiles(runDir string, match func(name string) bool) ([]string, error) {
	dir := filepath.Join(runDir, checkpointsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fit: checkpoints of %s: %w", runDir, err)
	}
	var paths []string
	for _, e := range entries {
		if e.Type().IsRegular() && match(e.Name()) {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(paths)
	return paths, nil
}

// CheckpointName is the file name, in a run's checkpoints/ folder, of the checkpoint taken after
// globalStep steps (where LatestCheckpoint finds it).
func CheckpointName(globalStep int64) string {
	return fmt.Sprintf("step-%012d%s", globalStep, checkpointExt)
}

// ListCheckpoints returns the checkpoint files of a run directory (in its "checkpoints"
// subdirectory), oldest (fewest steps) first. A missing directory gives an empty list.
func ListCheckpoints(runDir string) ([]string, error) {
	// Zero-padded step counts sort numerically.
	return checkpointDirFiles(runDir, func(n string) bool {
		return strings.HasPrefix(n, "step-") && strings.HasSuffix(n, checkpointExt)
	})
}

// LatestCheckpoint returns the newest checkpoint of a run directory, or "" when it has none.
func LatestCheckpoint(runDir string) (string, error) {
	paths, err := ListCheckpoints(runDir)
	if err != nil || len(paths) == 0 {
		return "", err
	}
	return paths[len(paths)-1], nil
}

// ResolveCheckpoint accepts a checkpoint file or a run directory and returns a checkpoint file:
// for a directory, its newest checkpoint.
func ResolveCheckpoint(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("fit: checkpoint %s: %w", path, err)
	}
	if !st.IsDir() {
		return path, nil
	}
	latest, err := LatestCheckpoint(path)
	if err != nil {
		return "", err
	}
	if latest == "" {
		return "", fmt.Errorf("fit: run directory %s has no checkpoints in %s/", path, checkpointsDir)
	}
	return latest, nil
}

// pruneCheckpoints deletes all but the newest keep checkpoints of runDir (keep <= 0 keeps all).
func pruneCheckpoints(runDir string, keep int) error {
	if keep <= 0 {
		return nil
	}
	paths, err := ListCheckpoints(runDir)
	if err != nil {
		return err
	}
	for len(paths) > keep {
		if err := os.Remove(paths[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("fit: removing old checkpoint: %w", err)
		}
		paths = paths[1:]
	}
	return nil
}
