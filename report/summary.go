package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// File names inside a distillation run directory.
const (
	// SummaryFile is the run's final record, written by `ifa distill` when the run ends.
	SummaryFile = "summary.json"
	// MetricsFile is the training loop's per-epoch record (one JSON object per line).
	MetricsFile = "metrics.jsonl"
)

// Params are a run's parameter counts.
type Params struct {
	// Teacher and Student: the trainable parameters of each network (BatchNorm statistics excluded).
	Teacher int64 `json:"teacher"`
	Student int64 `json:"student"`
	// Heads: the method's trainable heads, counted once; HeadsReported: as the talk counts them
	// (twice for IFACD and CRD, METHODS.md §2.1).
	Heads         int64 `json:"heads"`
	HeadsReported int64 `json:"heads_reported"`
	// Talk: Teacher + Student + HeadsReported, the talk's parameter table.
	Talk int64 `json:"talk"`
	// Trainable: Student + Heads, what the optimiser updates.
	Trainable int64 `json:"trainable"`
}

// Summary is what a distillation run records when it ends (summary.json).
type Summary struct {
	// Method is the registry name (kd, ifacd, crd, ...); Label names the method in tables
	// (ifacd2 for ifacd with two teacher taps, otherwise Method).
	Method string `json:"method"`
	Label  string `json:"label"`
	// Teacher and Student are the model names; TeacherCheckpoint the teacher's weights.
	Teacher           string `json:"teacher"`
	TeacherCheckpoint string `json:"teacher_checkpoint"`
	Student           string `json:"student"`
	// StudentTaps and TeacherTaps are the runs' tap choices (ifa distill --student-taps,
	// --teacher-taps; empty: the models' own).
	StudentTaps string `json:"student_taps,omitempty"`
	TeacherTaps string `json:"teacher_taps,omitempty"`
	// Dataset is the data distilled on; Recipe the optimiser recipe (ifard or repdistiller).
	Dataset string `json:"dataset"`
	Recipe  string `json:"recipe"`
	Seed    int64  `json:"seed"`
	// Gamma, Alpha and Beta weigh CE, KD and the method's term; KDTemperature is KD's T.
	Gamma         float64 `json:"gamma"`
	Alpha         float64 `json:"alpha"`
	Beta          float64 `json:"beta"`
	KDTemperature float64 `json:"kd_temperature"`
	// MethodParams are the method's context parameters as the run set them.
	MethodParams map[string]any `json:"method_params,omitempty"`

	// Epochs completed, and the test accuracy (%) after the last one and at its best.
	Epochs        int     `json:"epochs"`
	FinalTop1     float64 `json:"final_top1"`
	FinalTop5     float64 `json:"final_top5"`
	BestTop1      float64 `json:"best_top1"`
	BestTop1Epoch int     `json:"best_top1_epoch"`
	BestTop5      float64 `json:"best_top5"`
	// TeacherTop1/TeacherTop5: the teacher's test accuracy on the same data (nil if not measured).
	TeacherTop1 *float64 `json:"teacher_top1,omitempty"`
	TeacherTop5 *float64 `json:"teacher_top5,omitempty"`

	// PeakRSSBytes is the process's peak resident memory (the CPU stand-in for peak GPU memory).
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// DevicePeakBytes (XLA backends) is the device memory the largest compiled executable (the
	// training step) needs, and DeviceMemoryMeasure says how it was measured; both empty on the
	// host backends.
	DevicePeakBytes     int64  `json:"device_peak_bytes,omitempty"`
	DeviceMemoryMeasure string `json:"device_memory_measure,omitempty"`
	// Params are the parameter counts.
	Params Params `json:"params"`
	// SecondsPerEpoch is the mean wall time of an epoch (training and evaluation) over the
	// epochs in metrics.jsonl; TrainSeconds their sum.
	SecondsPerEpoch float64 `json:"seconds_per_epoch"`
	TrainSeconds    float64 `json:"train_seconds"`
	ImagesPerSec    float64 `json:"images_per_sec"`
	// Backend is the compute backend's name.
	Backend string `json:"backend"`
}

// Pair is the teacher → student column name of the run.
func (s Summary) Pair() string { return s.Teacher + "→" + s.Student }

// RowLabel is the run's row name: Label, or Method when Label is empty.
func (s Summary) RowLabel() string {
	if s.Label != "" {
		return s.Label
	}
	return s.Method
}

// WriteSummary writes runDir/summary.json atomically.
func WriteSummary(runDir string, s Summary) error {
	path := filepath.Join(runDir, SummaryFile)
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %s: %w", path, err)
	}
	return writeAtomic(path, append(data, '\n'))
}

// ReadSummary reads runDir/summary.json.
func ReadSummary(runDir string) (Summary, error) {
	path := filepath.Join(runDir, SummaryFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return Summary{}, fmt.Errorf("report: %w", err)
	}
	var s Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		return Summary{}, fmt.Errorf("report: %s: %w", path, err)
	}
	if s.Method == "" || s.Teacher == "" || s.Student == "" {
		return Summary{}, fmt.Errorf("report: %s: method, teacher and student must be set", path)
	}
	return s, nil
}

// EpochMetrics are the fields of one metrics.jsonl line that the report reads.
type EpochMetrics struct {
	Epoch        int      `json:"epoch"`
	TestTop1     *float64 `json:"test_top1"`
	TestTop5     *float64 `json:"test_top5"`
	Seconds      float64  `json:"seconds"`
	PeakRSSBytes int64    `json:"peak_rss_bytes"`
	ImagesPerSec float64  `json:"images_per_sec"`
}

// ReadMetrics reads runDir/metrics.jsonl, in epoch order.
func ReadMetrics(runDir string) ([]EpochMetrics, error) {
	path := filepath.Join(runDir, MetricsFile)
	var out []EpochMetrics
	err := eachJSONLine(path, func(line []byte) error {
		var m EpochMetrics
		if err := json.Unmarshal(line, &m); err != nil {
			return err
		}
		if m.Epoch < 1 {
			return fmt.Errorf("epoch %d, want >= 1", m.Epoch)
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Epoch < out[j].Epoch })
	return out, nil
}

// AddMetrics fills the summary's accuracies (final and best), training seconds, seconds per
// epoch and peak RSS (the larger of its own and the epochs') from a run's per-epoch metrics.
func (s *Summary) AddMetrics(metrics []EpochMetrics) {
	s.FinalTop1, s.FinalTop5, s.BestTop1, s.BestTop1Epoch, s.BestTop5, _ = Accuracies(metrics)
	for _, m := range metrics {
		s.TrainSeconds += m.Seconds
		s.PeakRSSBytes = max(s.PeakRSSBytes, m.PeakRSSBytes)
	}
	if len(metrics) > 0 {
		s.SecondsPerEpoch = s.TrainSeconds / float64(len(metrics))
	}
}

// Accuracies summarises the evaluated epochs of metrics: the last epoch's top-1/top-5, the best
// top-1 and its epoch, and the best top-5. ok is false when no epoch was evaluated.
func Accuracies(metrics []EpochMetrics) (finalTop1, finalTop5, bestTop1 float64, bestEpoch int, bestTop5 float64, ok bool) {
	bestTop1, bestTop5 = math.Inf(-1), math.Inf(-1)
	for _, m := range metrics {
		if m.TestTop1 == nil {
			continue
		}
		ok = true
		finalTop1 = *m.TestTop1
		if m.TestTop5 != nil {
			finalTop5 = *m.TestTop5
			bestTop5 = math.Max(bestTop5, *m.TestTop5)
		}
		if *m.TestTop1 > bestTop1 {
			bestTop1, bestEpoch = *m.TestTop1, m.Epoch
		}
	}
	if math.IsInf(bestTop5, -1) {
		bestTop5 = 0
	}
	if !ok {
		bestTop1 = 0
	}
	return finalTop1, finalTop5, bestTop1, bestEpoch, bestTop5, ok
}

// Run is one run directory as the report reads it.
type Run struct {
	Dir     string
	Summary Summary
	Metrics []EpochMetrics
}

// LoadRun reads a run directory's summary.json and metrics.jsonl.
func LoadRun(dir string) (Run, error) {
	s, err := ReadSummary(dir)
	if err != nil {
		return Run{}, err
	}
	m, err := ReadMetrics(dir)
	if err != nil {
		return Run{}, err
	}
	return Run{Dir: dir, Summary: s, Metrics: m}, nil
}

// LoadRuns reads each path: a run directory (it holds summary.json), or a folder whose immediate
// sub-folders are run directories. A folder with neither is an error, as is no run at all.
func LoadRuns(paths []string) ([]Run, error) {
	var runs []Run
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(p, SummaryFile)); err == nil {
			r, err := LoadRun(p)
			if err != nil {
				return nil, err
			}
			runs = append(runs, r)
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("report: %w", err)
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		found := 0
		for _, e := range entries {
			sub := filepath.Join(p, e.Name())
			if !e.IsDir() {
				continue
			}
			if _, err := os.Stat(filepath.Join(sub, SummaryFile)); err != nil {
				continue
			}
			r, err := LoadRun(sub)
			if err != nil {
				return nil, err
			}
			runs = append(runs, r)
			found++
		}
		if found == 0 {
			return nil, fmt.Errorf("report: %s: no %s in it or in its sub-folders (is it a finished 'ifa distill' run?)", p, SummaryFile)
		}
	}
	if len(runs) == 0 {
		return nil, errors.New("report: no run directories given")
	}
	return runs, nil
}

// eachJSONLine calls fn with every non-blank line of the JSON-lines file path, in order; an error
// of fn is returned with the file and line number.
func eachJSONLine(path string, fn func(line []byte) error) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(line); err != nil {
			return fmt.Errorf("report: %s: line %d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("report: %s: %w", path, err)
	}
	return nil
}
