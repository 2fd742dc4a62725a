package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestXLAMissingPluginIsOneLineWithHint(t *testing.T) {
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir())
	_, err := newXLABackend("no_such_device")
	if err == nil {
		t.Fatal("want an error for a plugin that is not installed")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "pip install") || !strings.Contains(msg, "no_such_device") {
		t.Errorf("error should be one line naming the plugin and how to install one, got %q", msg)
	}
}

func TestXLAPluginLookupInLibraryPath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pjrt_c_api_fake_plugin.so")
	if err := os.WriteFile(p, []byte("not a plugin"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", dir)
	got, err := findPJRTPlugin("fake")
	if err != nil || got != p {
		t.Fatalf("findPJRTPlugin(fake) = %q, %v; want %q", got, err, p)
	}
}

// The backend spec must reach the plugin lookup: a missing plugin gives the install hint, not a
// refusal of the xla backend itself.
func TestNewBackendXLAReachesPluginLookup(t *testing.T) {
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir())
	_, err := NewBackend("xla:no_such_device", false)
	if err == nil {
		t.Fatal("want an error for a plugin that is not installed")
	}
	if msg := err.Error(); !strings.Contains(msg, "pip install") || !strings.Contains(msg, "no_such_device") {
		t.Errorf("--backend xla:no_such_device: got %q, want the plugin lookup's install hint", msg)
	}
}

// XLA is pointed at the pip CUDA folder that holds libdevice (CUDA 13's nvidia/cu13 layout), and
// not at a folder without it, where XLA's own search must stay in charge.
func TestCUDADataDirPicksFolderWithLibdevice(t *testing.T) {
	sp := t.TempDir()
	plugin := filepath.Join(sp, "jax_plugins", "xla_cuda13", "xla_cuda_plugin.so")
	if err := os.MkdirAll(filepath.Dir(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(sp, "nvidia", "cublas", "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := cudaDataDir(plugin); got != "" {
		t.Fatalf("no libdevice anywhere: cudaDataDir = %q, want \"\"", got)
	}
	t.Setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
	configureCUDAEnv(plugin)
	if f := os.Getenv("XLA_FLAGS"); f != "--xla_dump_to=/tmp/x" {
		t.Errorf("XLA_FLAGS = %q, want it unchanged when no libdevice is found", f)
	}
	want := filepath.Join(sp, "nvidia", "cu13")
	if err := os.MkdirAll(filepath.Join(want, "nvvm", "libdevice"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := cudaDataDir(plugin); got != want {
		t.Fatalf("cudaDataDir = %q, want %q", got, want)
	}
	configureCUDAEnv(plugin)
	if f := os.Getenv("XLA_FLAGS"); f != "--xla_dump_to=/tmp/x --xla_gpu_cuda_data_dir="+want {
		t.Errorf("XLA_FLAGS = %q", f)
	}
}

func TestPJRTClientOptions(t *testing.T) {
	spec, opts, err := pjrtClientOptions("/x/xla_cuda_plugin.so", "tf32,memory_fraction=0.5")
	if err != nil || spec != "/x/xla_cuda_plugin.so,tf32" || opts["preallocate"] != false || opts["memory_fraction"] != float32(0.5) {
		t.Errorf("cuda: spec %q opts %v err %v", spec, opts, err)
	}
	if _, opts, _ := pjrtClientOptions("/x/xla_cuda_plugin.so", "preallocate"); opts["preallocate"] != true {
		t.Errorf("preallocate option: opts %v", opts)
	}
	if _, _, err := pjrtClientOptions("/x/xla_cuda_plugin.so", "memory_fraction=2"); err == nil || !strings.Contains(err.Error(), "memory_fraction") {
		t.Errorf("memory_fraction=2: err %v", err)
	}
	// Other plugins get no client options; everything goes to GoMLX.
	spec, opts, err = pjrtClientOptions("/x/pjrt_c_api_cpu_plugin.so", "shared_buffers")
	if err != nil || spec != "/x/pjrt_c_api_cpu_plugin.so,shared_buffers" || opts != nil {
		t.Errorf("cpu: spec %q opts %v err %v", spec, opts, err)
	}
}

// deterministic puts XLA's deterministic-ops option into XLA_FLAGS before
// the plugin is looked up, replacing any earlier setting of it and keeping the other options; the
// cpu backend leaves XLA_FLAGS alone.
func TestDeterministicFlagReachesXLAFlags(t *testing.T) {
	for _, tc := range []struct{ flags, want string }{
		{"", "--xla_gpu_deterministic_ops=true"},
		{"--xla_gpu_cuda_data_dir=/opt/cuda", "--xla_gpu_cuda_data_dir=/opt/cuda --xla_gpu_deterministic_ops=true"},
		{" --a=1 \t--xla_gpu_deterministic_ops=false\n--b  --xla_gpu_deterministic_ops ", "--a=1 --b --xla_gpu_deterministic_ops=true"},
		{"--xla_gpu_deterministic_ops_x=1", "--xla_gpu_deterministic_ops_x=1 --xla_gpu_deterministic_ops=true"},
	} {
		if got := setXLAFlag(tc.flags, xlaDeterministicOps, "true"); got != tc.want {
			t.Errorf("setXLAFlag(%q) = %q, want %q", tc.flags, got, tc.want)
		}
	}
}
