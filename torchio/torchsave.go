package torchio

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"
)

// Format names a file format Load recognises.
type Format string

// The formats.
const (
	FormatZip         Format = "torch-zip"
	FormatLegacy      Format = "torch-legacy"
	FormatSafetensors Format = "safetensors"
)

// maxPickleBytes caps the size of the object pickle (data.pkl): a state dict's is a few KiB per
// hundred tensors.
const maxPickleBytes = 256 << 20

// legacyMagic is torch.save's legacy magic number 0x1950a86a20f9469cfc6c.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// File is what Load read: the state dict and how it was found.
type File struct {
	Path   string
	Format Format
	// State is the state dict: the file's top-level dictionary of tensors, or the dictionary of
	// tensors under its "model" (or "state_dict") key, with a DataParallel "module." prefix
	// removed.
	State *StateDict
	// Wrapper is the key the state dict was found under ("" for a bare state dict); Extra lists the
	// wrapper's other keys with their scalar values where they have one (epoch, best_acc, ...).
	Wrapper string
	Extra   map[string]string
	// HasMetadata reports whether the state dict carried Module._metadata (torch ≥ 0.4 files).
	HasMetadata bool
}

// Load reads a PyTorch state dict saved with torch.save (zip or legacy format) or a safetensors
// file. Errors name the file.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

// Parse reads a torch.save or safetensors file held in memory.
func Parse(raw []byte) (*File, error) {
	switch {
	case bytes.HasPrefix(raw, []byte("PK\x03\x04")):
		return parseZip(raw)
	case bytes.HasPrefix(raw, []byte{0x80, 0x02, 0x8a, 0x0a}):
		return parseLegacy(raw)
	case len(raw) > 8 && raw[8] == '{':
		sd, err := ReadSafetensors(raw)
		if err != nil {
			return nil, err
		}
		return &File{Format: FormatSafetensors, State: sd}, nil
	case len(raw) > 262 && string(raw[257:262]) == "ustar":
		return nil, fmt.Errorf("a tar archive (torch.save before 0.4): not supported; re-save it with a newer torch")
	}
	return nil, fmt.Errorf("not a torch.save file (zip or legacy pickle) nor safetensors")
}

// parseZip reads torch.save's zip format.
func parseZip(raw []byte) (*File, error) {
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("torch zip archive: %w (truncated or damaged?)", err)
	}
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("torch zip archive: empty")
	}
	prefix, _, ok := strings.Cut(zr.File[0].Name, "/")
	if !ok || prefix == "" {
		return nil, fmt.Errorf("torch zip archive: first record %q is not in a folder", zr.File[0].Name)
	}
	records := map[string]*zip.File{}
	for _, zf := range zr.File {
		name, ok := strings.CutPrefix(zf.Name, prefix+"/")
		if !ok {
			return nil, fmt.Errorf("torch zip archive: record %q outside the folder %q", zf.Name, prefix)
		}
		if _, dup := records[name]; dup {
			return nil, fmt.Errorf("torch zip archive: record %q appears twice", zf.Name)
		}
		records[name] = zf
	}
	readRecord := func(name string, want int64) ([]byte, error) {
		zf, ok := records[name]
		if !ok {
			return nil, fmt.Errorf("torch zip archive: record %s/%s is missing", prefix, name)
		}
		if zf.Method != zip.Store {
			return nil, fmt.Errorf("torch zip archive: record %s is compressed (method %d); torch.save stores records uncompressed", zf.Name, zf.Method)
		}
		if want >= 0 && zf.UncompressedSize64 != uint64(want) {
			return nil, fmt.Errorf("torch zip archive: record %s holds %d bytes, want %d", zf.Name, zf.UncompressedSize64, want)
		}
		if zf.UncompressedSize64 > uint64(len(raw)) {
			return nil, fmt.Errorf("torch zip archive: record %s claims %d bytes in a file of %d", zf.Name, zf.UncompressedSize64, len(raw))
		}
		r, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("torch zip archive: record %s: %w", zf.Name, err)
		}
		defer r.Close()
		buf := make([]byte, zf.UncompressedSize64)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("torch zip archive: record %s: %w", zf.Name, err)
		}
		if n, _ := r.Read(make([]byte, 1)); n != 0 {
			return nil, fmt.Errorf("torch zip archive: record %s is longer than it says", zf.Name)
		}
		return buf, nil
	}
	if v, ok := records["version"]; ok && v.UncompressedSize64 < 64 {
		b, err := readRecord("version", -1)
		if err != nil {
			return nil, err
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || n < 1 || n > 100 {
			return nil, fmt.Errorf("torch zip archive: version record %q is not a format version", b)
		}
	} else {
		return nil, fmt.Errorf("torch zip archive: no %s/version record (not written by torch.save)", prefix)
	}
	if bo, ok := records["byteorder"]; ok && bo.UncompressedSize64 < 64 {
		b, err := readRecord("byteorder", -1)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(string(b)) != "little" {
			return nil, fmt.Errorf("torch zip archive: byte order %q: only little-endian files are supported", b)
		}
	}
	pklFile, ok := records["data.pkl"]
	if !ok {
		return nil, fmt.Errorf("torch zip archive: record %s/data.pkl is missing", prefix)
	}
	if pklFile.UncompressedSize64 > maxPickleBytes {
		return nil, fmt.Errorf("torch zip archive: data.pkl of %d bytes", pklFile.UncompressedSize64)
	}
	pkl, err := readRecord("data.pkl", -1)
	if err != nil {
		return nil, err
	}
	var st storageTable
	obj, end, err := unpickle(pkl, 0, func(pid pyTuple) (*storageRef, error) { return st.load(pid, false) })
	if err != nil {
		return nil, fmt.Errorf("%s/data.pkl: %w", prefix, err)
	}
	if end != len(pkl) {
		return nil, fmt.Errorf("%s/data.pkl: %d bytes after STOP", prefix, len(pkl)-end)
	}
	data := map[string][]byte{}
	for _, key := range st.order {
		s := st.byKey[key]
		n, ok := checkedMul(s.numel, int64(s.dtype.Size()))
		if !ok {
			return nil, fmt.Errorf("storage %s: %d elements overflow", key, s.numel)
		}
		b, err := readRecord("data/"+key, n)
		if err != nil {
			return nil, err
		}
		data[key] = b
	}
	return stateFromObject(obj, data, FormatZip)
}

// legacyReader steps through the consecutive pickles of the legacy format.
type legacyReader struct {
	raw []byte
	pos int
}

func (r *legacyReader) next(what string, pl func(pyTuple) (*storageRef, error)) (any, error) {
	if pl == nil {
		pl = func(pyTuple) (*storageRef, error) {
			return nil, fmt.Errorf("persistent id outside the object pickle")
		}
	}
	v, end, err := unpickle(r.raw, r.pos, pl)
	if err != nil {
		return nil, fmt.Errorf("legacy torch file: %s: %w", what, err)
	}
	r.pos = end
	return v, nil
}

// parseLegacy reads torch.save's legacy (pre-1.6) format.
func parseLegacy(raw []byte) (*File, error) {
	r := &legacyReader{raw: raw}
	magic, err := r.next("magic number", nil)
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return nil, fmt.Errorf("legacy torch file: bad magic number %v", magic)
	}
	proto, err := r.next("protocol version", nil)
	if err != nil {
		return nil, err
	}
	if proto != int64(1001) {
		return nil, fmt.Errorf("legacy torch file: protocol version %v, want 1001", proto)
	}
	sys, err := r.next("system information", nil)
	if err != nil {
		return nil, err
	}
	if d, ok := sys.(*pyDict); ok {
		if le, ok := d.get("little_endian"); ok && le != true {
			return nil, fmt.Errorf("legacy torch file: written on a big-endian machine: not supported")
		}
	} else {
		return nil, fmt.Errorf("legacy torch file: system information is a %s, want a dict", typeName(sys))
	}
	var st storageTable
	obj, err := r.next("object", func(pid pyTuple) (*storageRef, error) { return st.load(pid, true) })
	if err != nil {
		return nil, err
	}
	keysV, err := r.next("storage keys", nil)
	if err != nil {
		return nil, err
	}
	keys, ok := keysV.(*pyList)
	if !ok {
		return nil, fmt.Errorf("legacy torch file: storage keys are a %s, want a list", typeName(keysV))
	}
	if len(keys.items) != len(st.order) {
		return nil, fmt.Errorf("legacy torch file: %d storage sections listed, the object names %d", len(keys.items), len(st.order))
	}
	data := map[string][]byte{}
	for _, kv := range keys.items {
		key, ok := kv.(string)
		if !ok {
			return nil, fmt.Errorf("legacy torch file: storage key is a %s", typeName(kv))
		}
		s, ok := st.byKey[key]
		if !ok {
			return nil, fmt.Errorf("legacy torch file: storage section %s is not named by the object", key)
		}
		if _, dup := data[key]; dup {
			return nil, fmt.Errorf("legacy torch file: storage section %s listed twice", key)
		}
		if len(raw)-r.pos < 8 {
			return nil, fmt.Errorf("legacy torch file: truncated before storage %s", key)
		}
		count := int64(leUint64(raw[r.pos:]))
		r.pos += 8
		if count != s.numel {
			return nil, fmt.Errorf("legacy torch file: storage %s holds %d elements, the object says %d", key, count, s.numel)
		}
		n, ok := checkedMul(s.numel, int64(s.dtype.Size()))
		if !ok || n > int64(len(raw)-r.pos) {
			return nil, fmt.Errorf("legacy torch file: storage %s needs %d bytes, %d left (truncated?)", key, s.numel*int64(s.dtype.Size()), len(raw)-r.pos)
		}
		data[key] = raw[r.pos : r.pos+int(n)]
		r.pos += int(n)
	}
	if r.pos != len(raw) {
		return nil, fmt.Errorf("legacy torch file: %d unexpected bytes after the last storage", len(raw)-r.pos)
	}
	return stateFromObject(obj, data, FormatLegacy)
}

func leUint64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// stateFromObject finds the state dict in the unpickled object and materialises its tensors.
func stateFromObject(obj any, data map[string][]byte, format Format) (*File, error) {
	top, ok := obj.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("the file holds a %s, want a state dict (a dictionary of tensors)", typeName(obj))
	}
	f := &File{Format: format}
	sd := top
	if !isTensorDict(top) {
		sd = nil
		for _, k := range []string{"model", "state_dict"} {
			if v, ok := top.get(k); ok {
				if d, ok := v.(*pyDict); ok && isTensorDict(d) {
					sd, f.Wrapper = d, k
					break
				}
			}
		}
		if sd == nil {
			var names []string
			for _, k := range top.keys {
				names = append(names, fmt.Sprint(k))
			}
			return nil, fmt.Errorf("no state dict: the top-level dictionary (keys %v) is neither a dictionary of tensors nor holds one under \"model\" or \"state_dict\"", names)
		}
		f.Extra = map[string]string{}
		for i, k := range top.keys {
			if k == f.Wrapper {
				continue
			}
			f.Extra[fmt.Sprint(k)] = scalarString(top.vals[i], data)
		}
	}
	f.HasMetadata = sd.metadata != nil
	f.State = NewStateDict()
	prefix := ""
	if len(sd.keys) > 0 {
		prefix = "module."
		for _, k := range sd.keys {
			if !strings.HasPrefix(k.(string), prefix) {
				prefix = ""
				break
			}
		}
	}
	for i, k := range sd.keys {
		name := strings.TrimPrefix(k.(string), prefix)
		tr := sd.vals[i].(*tensorRef)
		t, err := materialize(tr, data[tr.storage.key])
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", name, err)
		}
		if _, dup := f.State.Tensors[name]; dup {
			return nil, fmt.Errorf("key %s appears twice", name)
		}
		f.State.Set(name, t)
	}
	return f, nil
}

// isTensorDict reports whether every key of d is a string and every value a tensor.
func isTensorDict(d *pyDict) bool {
	for i, k := range d.keys {
		if _, ok := k.(string); !ok {
			return false
		}
		if _, ok := d.vals[i].(*tensorRef); !ok {
			return false
		}
	}
	return true
}

// scalarString renders a wrapper entry: numbers and strings as themselves, a one-element tensor as
// its value, anything else as its type.
func scalarString(v any, data map[string][]byte) string {
	switch v := v.(type) {
	case int64, float64, bool, string, *big.Int:
		return fmt.Sprint(v)
	case *tensorRef:
		if t, err := materialize(v, data[v.storage.key]); err == nil && t.Numel() == 1 {
			if f, err := t.Float32s(); err == nil {
				return strconv.FormatFloat(float64(f[0]), 'g', -1, 32)
			}
			if n, err := t.Int64s(); err == nil {
				return fmt.Sprint(n[0])
			}
		}
	}
	return typeName(v)
}
