package torchio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type expectedTensor struct {
	Shape  []int     `json:"shape"`
	DType  string    `json:"dtype"`
	Values []float64 `json:"values"`
}

type expectedFile map[string]map[string]expectedTensor

// orderedKeys returns the keys of a JSON object in file order.
func orderedKeys(t *testing.T, raw []byte, section string) []string {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(top[section]))
	var keys []string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		tok, _ := dec.Token()
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func loadExpected(t *testing.T) (expectedFile, []byte) {
	t.Helper()
	raw, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e expectedFile
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	return e, raw
}

var torchDTypes = map[string]DType{"float32": F32, "float64": F64, "float16": F16, "bfloat16": BF16, "int64": I64}

func checkState(t *testing.T, sd *StateDict, want map[string]expectedTensor, order []string) {
	t.Helper()
	if !slices.Equal(sd.Keys, order) {
		t.Fatalf("keys %v, want %v", sd.Keys, order)
	}
	for k, w := range want {
		got := sd.Tensors[k]
		if got.DType != torchDTypes[w.DType] || !slices.Equal(got.Shape, w.Shape) {
			t.Fatalf("%s: %s %v, want %s %v", k, got.DType, got.Shape, w.DType, w.Shape)
		}
		var vals []float64
		if got.DType == I64 {
			n, _ := got.Int64s()
			for _, v := range n {
				vals = append(vals, float64(v))
			}
		} else {
			f, err := got.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range f {
				vals = append(vals, float64(v))
			}
		}
		if len(vals) != len(w.Values) {
			t.Fatalf("%s: %d values, want %d", k, len(vals), len(w.Values))
		}
		for i := range vals {
			if vals[i] != float64(float32(w.Values[i])) {
				t.Fatalf("%s[%d] = %v, want %v", k, i, vals[i], w.Values[i])
			}
		}
	}
}

func TestLoadTorchFiles(t *testing.T) {
	exp, raw := loadExpected(t)
	for _, tc := range []struct {
		file, section string
		format        Format
		wrapper       string
	}{
		{"plain_zip.pth", "plain", FormatZip, ""},
		{"plain_legacy.pth", "plain", FormatLegacy, ""},
		{"wrapped_zip.pth", "wrapped", FormatZip, "model"},
		{"wrapped_legacy.pth", "wrapped", FormatLegacy, "model"},
		{"module_prefix.pth", "wrapped", FormatZip, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := Load(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if f.Format != tc.format || f.Wrapper != tc.wrapper {
				t.Fatalf("format %s wrapper %q, want %s %q", f.Format, f.Wrapper, tc.format, tc.wrapper)
			}
			checkState(t, f.State, exp[tc.section], orderedKeys(t, raw, tc.section))
			if tc.wrapper != "" {
				if f.Extra["epoch"] != "240" || f.Extra["best_acc"] != "75.25" || f.Extra["optimizer"] != "dict" {
					t.Fatalf("wrapper extras %v", f.Extra)
				}
				if !f.HasMetadata {
					t.Fatal("module state dict: _metadata not seen")
				}
			}
		})
	}
}

func TestForbiddenGlobalInFile(t *testing.T) {
	_, err := Load("testdata/namespace.pth")
	if err == nil || !strings.Contains(err.Error(), "forbidden global argparse.Namespace") ||
		!strings.Contains(err.Error(), "namespace.pth") {
		t.Fatalf("err = %v", err)
	}
}

// pickleOf assembles a protocol-2 pickle from opcodes.
func pickleOf(parts ...string) []byte { return []byte("\x80\x02" + strings.Join(parts, "") + ".") }

func binunicode(s string) string {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
	return "X" + string(n[:]) + s
}

func TestPickleRejects(t *testing.T) {
	var st storageTable
	noPID := func(pid pyTuple) (*storageRef, error) { return st.load(pid, false) }
	cases := []struct {
		name, pkl, want string
	}{
		{"os.system", "cos\nsystem\n" + binunicode("echo hi") + "\x85R", "forbidden global os.system (GLOBAL os system"},
		{"posix.system", "cposix\nsystem\n" + binunicode("id") + "\x85R", "forbidden global posix.system"},
		{"builtins.eval", "cbuiltins\neval\n" + binunicode("1") + "\x85R", "forbidden global builtins.eval"},
		{"getattr", "c__builtin__\ngetattr\n", "forbidden global __builtin__.getattr"},
		{"subprocess", "csubprocess\nPopen\n", "forbidden global subprocess.Popen"},
		{"partial", "cfunctools\npartial\n", "forbidden global functools.partial"},
		{"reconstructor", "ccopy_reg\n_reconstructor\n", "forbidden global copy_reg._reconstructor"},
		{"numpy rebuild", "ctorch._utils\n_rebuild_device_tensor_from_numpy\n", "forbidden global torch._utils._rebuild_device_tensor_from_numpy"},
		{"from type", "ctorch._utils\n_rebuild_from_type_v2\n", "forbidden global"},
		{"stack global", binunicode("os") + binunicode("system") + "\x93", "STACK_GLOBAL"},
		{"inst", "(ios\nsystem\n", "INST"},
		{"obj", "(cos\nsystem\no", "forbidden global os.system"},
		{"newobj", ")\x81", "NEWOBJ"},
		{"frame", "\x95\x00\x00\x00\x00\x00\x00\x00\x00", "FRAME"},
		{"text persid", "P0\n", "PERSID"},
		{"protocol 4", "", "protocol 4"},
		{"call storage", "ctorch\nFloatStorage\n)R", "may not be called"},
		{"ordered dict args", "ccollections\nOrderedDict\n]\x85R", "arguments"},
		{"build on dict", "}}b", "BUILD"},
		{"bad build state", "ccollections\nOrderedDict\n)R}" + binunicode("x") + "Ns" + "b", "_metadata"},
		{"module pid", "(" + binunicode("module") + "tQ", "only 'storage' ids"},
		{"memo miss", "h\x05", "never written"},
		{"underflow", "a", "underflow"},
		{"truncated string", "X\xff\x00\x00\x00ab", "truncated"},
		{"huge string", "X\xff\xff\xff\x7f", "string of"},
		{"no stop", "N", "no STOP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := pickleOf(tc.pkl)
			if tc.name == "protocol 4" {
				data = []byte("\x80\x04N.")
			}
			if tc.name == "no stop" {
				data = []byte("\x80\x02N")
			}
			_, _, err := unpickle(data, 0, noPID)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestTensorViewBounds(t *testing.T) {
	s := &storageRef{dtype: F32, key: "0", numel: 12}
	ok := func(off int64, size, stride []int64) error {
		args := []any{s, off, intsTuple(size), intsTuple(stride)}
		_, err := rebuildTensor(args)
		return err
	}
	if err := ok(4, []int64{4}, []int64{1}); err != nil {
		t.Fatal(err)
	}
	if err := ok(0, []int64{4, 3}, []int64{1, 4}); err != nil {
		t.Fatal(err)
	}
	if err := ok(0, []int64{0, 100}, []int64{100, 1}); err != nil {
		t.Fatal(err) // empty tensors need no storage
	}
	for _, bad := range []struct {
		off          int64
		size, stride []int64
	}{
		{9, []int64{4}, []int64{1}},
		{0, []int64{3, 5}, []int64{4, 1}},
		{0, []int64{2, 2}, []int64{math.MaxInt64, 1}},
		{math.MaxInt64, []int64{2}, []int64{1}},
		{0, []int64{1 << 40, 1 << 40}, []int64{0, 0}},
	} {
		if err := ok(bad.off, bad.size, bad.stride); err == nil {
			t.Fatalf("view %+v accepted", bad)
		}
	}
}

func intsTuple(v []int64) pyTuple {
	out := make(pyTuple, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// rewriteZip copies a zip archive, letting edit change each record's name and contents (nil
// drops the record).
func rewriteZip(t *testing.T, raw []byte, edit func(name string, data []byte) (string, []byte)) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		r, _ := f.Open()
		var data bytes.Buffer
		if _, err := data.ReadFrom(r); err != nil {
			t.Fatal(err)
		}
		r.Close()
		name, d := edit(f.Name, data.Bytes())
		if d == nil {
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(d)
	}
	zw.Close()
	return buf.Bytes()
}

func TestZipDamage(t *testing.T) {
	raw, err := os.ReadFile("testdata/plain_zip.pth")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(raw); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{len(raw) - 1, len(raw) / 2, 100, 10} {
		if _, err := Parse(raw[:n]); err == nil || !strings.Contains(err.Error(), "zip") {
			t.Fatalf("truncated to %d: err = %v", n, err)
		}
	}
	cases := map[string]func(string, []byte) (string, []byte){
		"short record": func(n string, d []byte) (string, []byte) {
			if strings.HasSuffix(n, "/data/0") {
				return n, d[:len(d)-4]
			}
			return n, d
		},
		"missing record": func(n string, d []byte) (string, []byte) {
			if strings.HasSuffix(n, "/data/1") {
				return n, nil
			}
			return n, d
		},
		"no version": func(n string, d []byte) (string, []byte) {
			if strings.HasSuffix(n, "/version") {
				return n, nil
			}
			return n, d
		},
		"evil pickle": func(n string, d []byte) (string, []byte) {
			if strings.HasSuffix(n, "/data.pkl") {
				return n, []byte("\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R.")
			}
			return n, d
		},
	}
	want := map[string]string{"short record": "holds", "missing record": "missing", "no version": "version", "evil pickle": "forbidden global os.system"}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(rewriteZip(t, raw, edit))
			if err == nil || !strings.Contains(err.Error(), want[name]) {
				t.Fatalf("err = %v, want %q", err, want[name])
			}
		})
	}
}

func TestLegacyDamage(t *testing.T) {
	raw, err := os.ReadFile("testdata/plain_legacy.pth")
	if err != nil {
		t.Fatal(err)
	}
	for n := len(raw) - 1; n > 0; n -= 37 {
		if _, err := Parse(raw[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", n)
		}
	}
	if _, err := Parse(append(slices.Clone(raw), 0)); err == nil || !strings.Contains(err.Error(), "unexpected bytes") {
		t.Fatalf("trailing byte: err = %v", err)
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	f, err := Load("testdata/plain_zip.pth")
	if err != nil {
		t.Fatal(err)
	}
	f.State.Metadata = map[string]string{"arch": "test"}
	raw, err := EncodeSafetensors(f.State)
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint64(raw); n%8 != 0 {
		t.Fatalf("header length %d not padded to 8", n)
	}
	back, err := ReadSafetensors(raw)
	if err != nil {
		t.Fatal(err)
	}
	if back.Metadata["arch"] != "test" || len(back.Keys) != len(f.State.Keys) {
		t.Fatalf("metadata %v keys %v", back.Metadata, back.Keys)
	}
	for _, k := range f.State.Keys {
		a, b := f.State.Tensors[k], back.Tensors[k]
		if a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("%s differs after the round trip", k)
		}
	}
	// The file written by WriteSafetensorsFile is what Load reads back.
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteSafetensorsFile(path, f.State); err != nil {
		t.Fatal(err)
	}
	g, err := Load(path)
	if err != nil || g.Format != FormatSafetensors || len(g.State.Keys) != len(f.State.Keys) {
		t.Fatalf("load: %v", err)
	}
}

// safetensorsFile assembles a file from a header and data.
func safetensorsFile(hdr string, data []byte) []byte {
	out := make([]byte, 8)
	binary.LittleEndian.PutUint64(out, uint64(len(hdr)))
	return append(append(out, hdr...), data...)
}

func TestSafetensorsRejects(t *testing.T) {
	d8 := make([]byte, 8)
	cases := []struct {
		name string
		raw  []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter than"},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 200_000_000), "exceeds"},
		{"header past end", append(binary.LittleEndian.AppendUint64(nil, 100), '{'), "runs past"},
		{"not json", safetensorsFile("{x", nil), "header"},
		{"no brace", safetensorsFile(` {"a":1}`, nil), "'{'"},
		{"lying offsets", safetensorsFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, d8), "run past"},
		{"size mismatch", safetensorsFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, d8), "needs 12 bytes"},
		{"gap", safetensorsFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), "gap or overlap"},
		{"overlap", safetensorsFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), "gap or overlap"},
		{"trailing data", safetensorsFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, d8), "cover 4 data bytes"},
		{"duplicate", safetensorsFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), "twice"},
		{"dtype", safetensorsFile(`{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}`, d8), "unsupported dtype"},
		{"overflow", safetensorsFile(`{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}}`, d8), "overflows"},
		{"extra field", safetensorsFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`, d8), "unknown field"},
		{"metadata types", safetensorsFile(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSafetensors(tc.raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Scalars and empty tensors are valid.
	sd, err := ReadSafetensors(safetensorsFile(`{"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]}}`, d8))
	if err != nil || sd.Tensors["s"].Numel() != 1 || sd.Tensors["e"].Numel() != 0 {
		t.Fatalf("scalar/empty: %v", err)
	}
}

func TestHalfConversion(t *testing.T) {
	for h, want := range map[uint16]float32{0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 5.9604645e-08, 0x8000: float32(math.Copysign(0, -1))} {
		if got := halfToFloat32(h); got != want {
			t.Fatalf("half %#04x = %v, want %v", h, got, want)
		}
	}
}
