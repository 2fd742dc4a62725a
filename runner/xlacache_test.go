package runner

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestScanFlagNamesAcrossChunks(t *testing.T) {
	names := []string{"--xla_a_flag", "--xla_b_flag", "--xla_missing", "--xla_in_descriptor"}
	data := make([]byte, 4<<20+100)
	copy(data[100:], "xla_a_flag")
	copy(data[4<<20-4:], "xla_b_flag") // cut by the first chunk's end, NUL included
	copy(data[len(data)-20:], "xla_missin")
	copy(data[300:], "\x12\x11xla_in_descriptor\x18\x07") // a descriptor's field name: not NUL-terminated
	found, err := scanFlagNames(bytes.NewReader(data), names)
	if err != nil {
		t.Fatal(err)
	}
	if !found["--xla_a_flag"] || !found["--xla_b_flag"] || found["--xla_missing"] || found["--xla_in_descriptor"] {
		t.Errorf("found %v: want a and b (b across the chunk boundary), not the truncated name nor the descriptor's", found)
	}
	// Exactly at the boundary: the name's last byte ends the first chunk, its NUL starts the second.
	data = make([]byte, 4<<20+10)
	copy(data[4<<20-len("xla_a_flag"):], "xla_a_flag")
	if found, _ := scanFlagNames(bytes.NewReader(data), names[:1]); !found["--xla_a_flag"] {
		t.Error("a name whose NUL starts the next chunk was missed")
	}
}

// fakePlugin writes a plugin file naming the given options (without "--") among other bytes.
func fakePlugin(t *testing.T, dir string, names ...string) string {
	t.Helper()
	path := filepath.Join(dir, "pjrt_c_api_cuda_plugin.so")
	body := "\x7fELF junk " + strings.Join(names, "\x00junk\x00") + "\x00end"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func resetFlagScanMemo() {
	flagScanMu.Lock()
	clear(flagScanMemo)
	flagScanMu.Unlock()
}

func TestXLACompileFlagsGuardAndCache(t *testing.T) {
	resetFlagScanMemo()
	tmp := t.TempDir()
	plugin := fakePlugin(t, tmp, "xla_gpu_enable_llvm_module_compilation_parallelism", "xla_gpu_kernel_cache_file")
	cache := filepath.Join(tmp, "cache")
	var warnings []string
	warn := func(m string) { warnings = append(warnings, m) }
	p, err := identifyPlugin(plugin)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "xla", p.key())
	scans := flagScanCount

	got := xlaCompileFlags("--xla_dump_to=/tmp/d", plugin, cache, warn)
	want := "--xla_dump_to=/tmp/d " + xlaLLVMParallel + "=true " + xlaKernelCache + "=" + filepath.Join(dir, "kernels.bin")
	if got != want {
		t.Errorf("flags\n%q, want\n%q (the autotune folder option is not in the plugin: left out)", got, want)
	}
	if flagScanCount != scans+1 {
		t.Errorf("%d scans of the plugin, want 1", flagScanCount-scans)
	}
	// The user's own setting wins and is not repeated.
	if got := xlaCompileFlags(xlaLLVMParallel+"=false", plugin, "off", warn); got != xlaLLVMParallel+"=false" {
		t.Errorf("cache off and the option set by the user: %q", got)
	}
	// A new process (empty memo) reads the answer from flags.json instead of scanning again.
	resetFlagScanMemo()
	if got2 := xlaCompileFlags("--xla_dump_to=/tmp/d", plugin, cache, warn); got2 != want || flagScanCount != scans+1 {
		t.Errorf("second process: %q after %d scans, want the same flags from flags.json", got2, flagScanCount-scans)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings %q", warnings)
	}
	// An answer of an older scanning rule is not reused.
	resetFlagScanMemo()
	raw, err := os.ReadFile(filepath.Join(dir, "flags.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "flags.json"), bytes.Replace(raw, []byte(`"scan": 2`), []byte(`"scan": 1`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	xlaCompileFlags("", plugin, cache, warn)
	if flagScanCount != scans+2 || len(warnings) != 1 || !strings.Contains(warnings[0], "an older scan") {
		t.Errorf("an older scan's answer: %d scans, warnings %q", flagScanCount-scans, warnings)
	}
	warnings = nil
	scans++
	// A corrupt flags.json is ignored with a warning and the plugin scanned again.
	resetFlagScanMemo()
	if err := os.WriteFile(filepath.Join(dir, "flags.json"), []byte(`{"plugin": {"path": 3`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := xlaCompileFlags("", plugin, cache, warn); !strings.Contains(got, xlaKernelCache) || flagScanCount != scans+2 {
		t.Errorf("after a corrupt flags.json: %q, %d scans", got, flagScanCount-scans)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "flags.json is corrupt") {
		t.Errorf("warnings %q, want one naming the corrupt flags.json", warnings)
	}
	// Another plugin file (even at the same path) gets another cache folder and is scanned.
	time.Sleep(10 * time.Millisecond)
	plugin = fakePlugin(t, tmp, "xla_gpu_per_fusion_autotune_cache_dir", "xla_gpu_kernel_cache_file")
	p2, _ := identifyPlugin(plugin)
	if p2.key() == p.key() {
		t.Fatal("a changed plugin file has the same cache key")
	}
	dir2 := filepath.Join(cache, "xla", p2.key())
	got = xlaCompileFlags("", plugin, cache, warn)
	want = xlaKernelCache + "=" + filepath.Join(dir2, "kernels.bin") + " " + xlaAutotuneDir + "=" + filepath.Join(dir2, "autotune")
	if got != want || flagScanCount != scans+3 {
		t.Errorf("changed plugin: %q (%d scans), want %q", got, flagScanCount-scans, want)
	}
	if fi, err := os.Stat(filepath.Join(dir2, "autotune")); err != nil || !fi.IsDir() {
		t.Errorf("the autotune folder must exist before XLA runs: %v", err)
	}
	// A plugin naming none of the options gets none, whatever the cache.
	resetFlagScanMemo()
	none := fakePlugin(t, t.TempDir())
	if got := xlaCompileFlags("--a", none, cache, warn); got != "--a" {
		t.Errorf("plugin without the options: %q", got)
	}
	// No plugin file: a warning, XLA_FLAGS unchanged.
	if got := xlaCompileFlags("--a", filepath.Join(tmp, "absent.so"), cache, warn); got != "--a" || !strings.Contains(warnings[len(warnings)-1], "absent.so") {
		t.Errorf("absent plugin: %q, warnings %q", got, warnings)
	}
}

func TestCompileCacheCorruptEntries(t *testing.T) {
	resetFlagScanMemo()
	tmp := t.TempDir()
	plugin := fakePlugin(t, tmp, "xla_gpu_kernel_cache_file", "xla_gpu_per_fusion_autotune_cache_dir")
	cache := filepath.Join(tmp, "cache")
	p, _ := identifyPlugin(plugin)
	dir := filepath.Join(cache, "xla", p.key())
	var warnings []string
	warn := func(m string) { warnings = append(warnings, m) }
	xlaCompileFlags("", plugin, cache, warn)
	kernels := filepath.Join(dir, "kernels.bin")
	// A whole message: field 1, 3 bytes; field 2 varint 300.
	good := []byte{0x0a, 3, 'a', 'b', 'c', 0x10, 0xac, 0x02}
	if err := os.WriteFile(kernels, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := xlaCompileFlags("", plugin, cache, warn); !strings.Contains(got, xlaKernelCache+"="+kernels) || len(warnings) != 0 {
		t.Errorf("whole kernel cache: %q, warnings %q", got, warnings)
	}
	// Cut short: moved aside with a warning, and the option still names the (now absent) file.
	if err := os.WriteFile(kernels, good[:4], 0o644); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "autotune", "x.textproto.tmp123")
	empty := filepath.Join(dir, "autotune", "y.textproto")
	kept := filepath.Join(dir, "autotune", "z.textproto")
	for f, body := range map[string]string{stale: "partial", empty: "", kept: "results {}"} {
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := xlaCompileFlags("", plugin, cache, warn)
	if !strings.Contains(got, xlaKernelCache+"="+kernels) {
		t.Errorf("after a corrupt kernel cache: %q", got)
	}
	if _, err := os.Stat(kernels); !os.IsNotExist(err) {
		t.Errorf("the corrupt kernel cache is still in place: %v", err)
	}
	if m, _ := filepath.Glob(kernels + ".corrupt-*"); len(m) != 1 {
		t.Errorf("corrupt kernel cache moved aside: %v", m)
	}
	for _, f := range []string{stale, empty} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s: incomplete autotune entry kept", f)
		}
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("a whole autotune entry was removed: %v", err)
	}
	if len(warnings) != 3 || !strings.Contains(warnings[0], "kernels.bin is corrupt") {
		t.Errorf("warnings %q, want the kernel cache and the two autotune entries", warnings)
	}
}

func TestCheckProtoWire(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		ok   bool
	}{
		{nil, true},
		{[]byte{0x0a, 0}, true},
		{[]byte{0x0a, 2, 1, 2, 0x15, 1, 2, 3, 4, 0x19, 1, 2, 3, 4, 5, 6, 7, 8}, true},
		{[]byte{0x0a, 5, 1}, false},             // length past the end
		{[]byte{0x0a}, false},                   // no length
		{[]byte{0x02, 0}, false},                // field 0
		{[]byte{0x0b}, false},                   // wire type 3 (groups) not expected
		{[]byte{0x10, 0x80}, false},             // varint cut short
		{[]byte{0x15, 1, 2}, false},             // fixed32 cut short
		{bytes.Repeat([]byte{0xff}, 11), false}, // overlong varint
	} {
		if err := checkProtoWire(tc.data); (err == nil) != tc.ok {
			t.Errorf("% x: error %v, want ok %v", tc.data, err, tc.ok)
		}
	}
}

func FuzzCheckProtoWire(f *testing.F) {
	f.Add([]byte{0x0a, 3, 'a', 'b', 'c'})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) { _ = checkProtoWire(data) })
}

func TestCompileCacheDir(t *testing.T) {
	if d, err := compileCacheDir("off"); d != "" || err != nil {
		t.Errorf("off: %q %v", d, err)
	}
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	if d, err := compileCacheDir("auto"); d != "/x/cache/ifa" || err != nil {
		t.Errorf("auto: %q %v, want the user cache folder's ifa", d, err)
	}
	if d, _ := compileCacheDir("/a/b"); d != "/a/b" {
		t.Errorf("folder: %q", d)
	}
}
