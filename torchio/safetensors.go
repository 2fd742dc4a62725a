package torchio

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"unicode/utf8"

	"github.com/ifa-toolkit/ifa/internal/atomicfile"
)

// maxSafetensorsHeader is the reference implementation's header cap.
const maxSafetensorsHeader = 100_000_000

// safetensorsDTypes are the dtypes ReadSafetensors accepts.
var safetensorsDTypes = map[string]DType{
	"F64": F64, "F32": F32, "F16": F16, "BF16": BF16, "I64": I64, "I32": I32, "I16": I16, "I8": I8,
	"U8": U8, "BOOL": Bool,
}

type stEntry struct {
	name   string
	dtype  DType
	shape  []int
	begin  int64
	end    int64
	tensor *Tensor
}

// ReadSafetensors parses a safetensors file held in memory. It enforces the reference checks
// (header size, UTF-8 JSON starting with '{', known dtypes, offsets contiguous from 0 without
// gaps or overlaps, sizes matching the shapes, data covering the rest of the file exactly) plus
// no duplicate keys.
func ReadSafetensors(raw []byte) (*StateDict, error) {
	if len(raw) < 8 {
		return nil, fmt.Errorf("safetensors: %d bytes, shorter than the 8-byte header length", len(raw))
	}
	n := binary.LittleEndian.Uint64(raw)
	if n > maxSafetensorsHeader {
		return nil, fmt.Errorf("safetensors: header length %d exceeds %d", n, maxSafetensorsHeader)
	}
	if n > uint64(len(raw)-8) {
		return nil, fmt.Errorf("safetensors: header length %d runs past the end of the %d-byte file", n, len(raw))
	}
	hdr := raw[8 : 8+n]
	if !utf8.Valid(hdr) {
		return nil, fmt.Errorf("safetensors: header is not UTF-8")
	}
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, fmt.Errorf("safetensors: header does not start with '{'")
	}
	entries, meta, err := parseSafetensorsHeader(hdr)
	if err != nil {
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	data := raw[8+n:]
	byOffset := slices.Clone(entries)
	sort.SliceStable(byOffset, func(i, j int) bool {
		if byOffset[i].begin != byOffset[j].begin {
			return byOffset[i].begin < byOffset[j].begin
		}
		return byOffset[i].end < byOffset[j].end
	})
	var prev int64
	for _, e := range byOffset {
		if e.begin != prev || e.end < e.begin {
			return nil, fmt.Errorf("safetensors: tensor %s: data offsets [%d, %d) leave a gap or overlap (previous tensor ends at %d)", e.name, e.begin, e.end, prev)
		}
		numel := int64(1)
		for _, d := range e.shape {
			var ok bool
			if numel, ok = checkedMul(numel, int64(d)); !ok {
				return nil, fmt.Errorf("safetensors: tensor %s: shape %v overflows", e.name, e.shape)
			}
		}
		size, ok := checkedMul(numel, int64(e.dtype.Size()))
		if !ok || size != e.end-e.begin {
			return nil, fmt.Errorf("safetensors: tensor %s: %s %v needs %d bytes, its offsets [%d, %d) give %d", e.name, e.dtype, e.shape, size, e.begin, e.end, e.end-e.begin)
		}
		if e.end > int64(len(data)) {
			return nil, fmt.Errorf("safetensors: tensor %s: data offsets [%d, %d) run past the %d data bytes (truncated?)", e.name, e.begin, e.end, len(data))
		}
		prev = e.end
	}
	if prev != int64(len(data)) {
		return nil, fmt.Errorf("safetensors: the tensors cover %d data bytes, the file holds %d", prev, len(data))
	}
	sd := NewStateDict()
	sd.Metadata = meta
	sorted := slices.Clone(entries)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, e := range sorted {
		sd.Set(e.name, &Tensor{DType: e.dtype, Shape: e.shape, Data: slices.Clone(data[e.begin:e.end])})
	}
	return sd, nil
}

// parseSafetensorsHeader decodes the JSON header token by token, rejecting duplicate keys and
// unknown fields.
func parseSafetensorsHeader(hdr []byte) ([]stEntry, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // '{'
		return nil, nil, err
	}
	seen := map[string]bool{}
	var entries []stEntry
	var meta map[string]string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("key %v is not a string", tok)
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("key %q appears twice", name)
		}
		seen[name] = true
		var rawVal json.RawMessage
		if err := dec.Decode(&rawVal); err != nil {
			return nil, nil, fmt.Errorf("key %q: %w", name, err)
		}
		if name == "__metadata__" {
			if err := strictUnmarshal(rawVal, &meta); err != nil {
				return nil, nil, fmt.Errorf("__metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var info struct {
			DType   *string  `json:"dtype"`
			Shape   []int64  `json:"shape"`
			Offsets []uint64 `json:"data_offsets"`
		}
		if err := strictUnmarshal(rawVal, &info); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if info.DType == nil || info.Shape == nil || len(info.Offsets) != 2 {
			return nil, nil, fmt.Errorf("tensor %q: want dtype, shape and data_offsets [begin, end]", name)
		}
		dt, ok := safetensorsDTypes[*info.DType]
		if !ok {
			return nil, nil, fmt.Errorf("tensor %q: unsupported dtype %q", name, *info.DType)
		}
		e := stEntry{name: name, dtype: dt, shape: make([]int, len(info.Shape))}
		for i, d := range info.Shape {
			if d < 0 || d > 1<<40 {
				return nil, nil, fmt.Errorf("tensor %q: dimension %d", name, d)
			}
			e.shape[i] = int(d)
		}
		if info.Offsets[0] > 1<<62 || info.Offsets[1] > 1<<62 {
			return nil, nil, fmt.Errorf("tensor %q: data offsets %v", name, info.Offsets)
		}
		e.begin, e.end = int64(info.Offsets[0]), int64(info.Offsets[1])
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, nil, err
	}
	// Only padding may follow the object.
	rest := hdr[dec.InputOffset():]
	if len(bytes.TrimRight(rest, " \x00")) != 0 {
		return nil, nil, fmt.Errorf("%d unexpected bytes after the JSON object", len(rest))
	}
	return entries, meta, nil
}

func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// EncodeSafetensors serialises sd: tensors sorted by dtype (widest first) then name, the header
// padded with spaces to a multiple of 8 bytes, sd.Metadata as __metadata__.
func EncodeSafetensors(sd *StateDict) ([]byte, error) {
	names := slices.Clone(sd.Keys)
	sort.SliceStable(names, func(i, j int) bool {
		a, b := sd.Tensors[names[i]], sd.Tensors[names[j]]
		if a.DType.Size() != b.DType.Size() {
			return a.DType.Size() > b.DType.Size()
		}
		if a.DType != b.DType {
			return a.DType < b.DType
		}
		return names[i] < names[j]
	})
	hdr := map[string]any{}
	if len(sd.Metadata) > 0 {
		hdr["__metadata__"] = sd.Metadata
	}
	var off int64
	for _, name := range names {
		t := sd.Tensors[name]
		if t.DType.Size() == 0 {
			return nil, fmt.Errorf("safetensors: tensor %s: unknown dtype %q", name, t.DType)
		}
		if int64(len(t.Data)) != int64(t.Numel())*int64(t.DType.Size()) {
			return nil, fmt.Errorf("safetensors: tensor %s: %d bytes for %s %v", name, len(t.Data), t.DType, t.Shape)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		hdr[name] = map[string]any{"dtype": string(t.DType), "shape": shape, "data_offsets": [2]int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	out := make([]byte, 8, 8+len(js)+int(off))
	binary.LittleEndian.PutUint64(out, uint64(len(js)))
	out = append(out, js...)
	for _, name := range names {
		out = append(out, sd.Tensors[name].Data...)
	}
	return out, nil
}

// WriteSafetensorsFile writes sd to path atomically (a temporary file in the same folder, synced
// and renamed): a reader sees the old file or the complete new one, never part of one.
func WriteSafetensorsFile(path string, sd *StateDict) (err error) {
	raw, err := EncodeSafetensors(sd)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteFile(path, raw)
}
