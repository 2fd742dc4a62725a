package torchio

import (
	"os"
	"testing"
)

// The fuzz targets run their seed corpus in every `go test` (and so in `make test`); a longer
// search is `go test ./torchio -run '^$' -fuzz FuzzParse -fuzztime 30s`.

func addSeeds(f *testing.F, files ...string) {
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
}

// FuzzPickle: the pickle machine never panics, whatever the bytes.
func FuzzPickle(f *testing.F) {
	f.Add([]byte("\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01."))
	f.Add([]byte("\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R."))
	f.Add([]byte("\x80\x02}q\x00(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00b]q\x01(K\x01G?\xf0\x00\x00\x00\x00\x00\x00eu."))
	f.Add([]byte("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."))
	f.Add([]byte("\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ."))
	f.Fuzz(func(t *testing.T, data []byte) {
		var st storageTable
		_, _, _ = unpickle(data, 0, func(pid pyTuple) (*storageRef, error) { return st.load(pid, false) })
	})
}

// FuzzParse: whole files (zip, legacy, safetensors) never panic and never allocate beyond what
// the file justifies.
func FuzzParse(f *testing.F) {
	addSeeds(f, "testdata/plain_zip.pth", "testdata/plain_legacy.pth", "testdata/wrapped_legacy.pth")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse(data)
	})
}

// FuzzSafetensors: the safetensors reader never panics, and what it accepts re-encodes to a file
// it reads back to the same tensors.
func FuzzSafetensors(f *testing.F) {
	f.Add(safetensorsFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(safetensorsFile(`{"__metadata__":{"k":"v"},"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"e":{"dtype":"BF16","shape":[0],"data_offsets":[8,8]}}`, make([]byte, 8)))
	f.Add(safetensorsFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}`, make([]byte, 8)))
	f.Fuzz(func(t *testing.T, data []byte) {
		sd, err := ReadSafetensors(data)
		if err != nil {
			return
		}
		raw, err := EncodeSafetensors(sd)
		if err != nil {
			t.Fatalf("re-encoding an accepted file: %v", err)
		}
		back, err := ReadSafetensors(raw)
		if err != nil {
			t.Fatalf("reading back a re-encoded file: %v", err)
		}
		if len(back.Keys) != len(sd.Keys) {
			t.Fatalf("%d tensors, read back %d", len(sd.Keys), len(back.Keys))
		}
	})
}
