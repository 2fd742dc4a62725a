package fit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ifa-toolkit/ifa/internal/atomicfile"
)

// File names inside a run directory.
const (
	ConfigFile  = "config.json"
	MetricsFile = "metrics.jsonl"
)

// WriteConfig writes runDir/config.json: {"params": params, "fit": cfg}, where params holds the
// command's flags and hyper-parameters (any JSON-encodable value, e.g. the command's kong struct)
// and cfg the training-loop configuration. The file is replaced atomically.
func WriteConfig(runDir string, params any, cfg Config) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("fit: run directory %s: %w", runDir, err)
	}
	data, err := json.MarshalIndent(struct {
		Params any    `json:"params"`
		Fit    Config `json:"fit"`
	}{params, cfg}, "", "  ")
	if err != nil {
		return fmt.Errorf("fit: %s: %w", filepath.Join(runDir, ConfigFile), err)
	}
	return writeFileAtomic(filepath.Join(runDir, ConfigFile), append(data, '\n'))
}

// writeFileAtomic writes data to path atomically (internal/atomicfile).
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("fit: %w", err)
	}
	return nil
}

// PeakRSS returns the process's peak resident set size in bytes (VmHWM of /proc/self/status),
// or 0 where that is not available.
func PeakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// record is a JSON object whose keys keep their insertion order.
type record struct {
	keys []string
	vals []any
}

func (r *record) add(key string, val any) { r.keys = append(r.keys, key); r.vals = append(r.vals, val) }

// MarshalJSON writes the keys in order; non-finite floats become null.
func (r *record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range r.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteByte(':')
		v := r.vals[i]
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			v = nil
		}
		vj, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b.Write(vj)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// appendMetrics appends one JSON line to runDir/metrics.jsonl.
func appendMetrics(runDir string, r *record) error {
	path := filepath.Join(runDir, MetricsFile)
	line, err := r.MarshalJSON()
	if err != nil {
		return fmt.Errorf("fit: %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("fit: %s: %w", path, err)
	}
	if _, err = f.Write(append(line, '\n')); err != nil {
		_ = f.Close()
		return fmt.Errorf("fit: %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("fit: %s: %w", path, err)
	}
	return nil
}

// resetMetrics prepares metrics.jsonl for a run that has completed `epochs` epochs: a fresh run
// (epochs 0) starts an empty file; a resumed run keeps the lines of epochs 1..epochs and drops
// those written after its checkpoint.
func resetMetrics(runDir string, epochs int) error {
	path := filepath.Join(runDir, MetricsFile)
	if epochs == 0 {
		return writeFileAtomic(path, nil)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fit: %s: %w", path, err)
	}
	var kept bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec struct {
			Epoch int `json:"epoch"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return fmt.Errorf("fit: %s: line %d: %w", path, n, err)
		}
		if rec.Epoch <= epochs {
			kept.Write(line)
			kept.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("fit: %s: %w", path, err)
	}
	return writeFileAtomic(path, kept.Bytes())
}
