package runner

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"
)

// xlaInstallHint is the one line a user sees when no PJRT plugin can be found.
const xlaInstallHint = "install a PJRT plugin (for NVIDIA GPUs: `pip install jax-cuda13-pjrt`, or `pip install -U \"jax[cuda13]\"`), " +
	"or set PJRT_PLUGIN_LIBRARY_PATH to the folder holding pjrt_c_api_<name>_plugin.so, or pass --backend xla:/abs/path/plugin.so"

// newXLABackend creates GoMLX's XLA backend for a plugin named in config ("cuda", "cpu", or an
// absolute path to a plugin .so, optionally followed by ",option..."). It never downloads anything:
// plugins are looked up in PJRT_PLUGIN_LIBRARY_PATH, the system library paths and the Python
// site-packages where JAX installs its CUDA plugin.
func newXLABackend(config string) (backends.Backend, error) {
	xla.EnableAutoInstall(false)
	name, options, _ := strings.Cut(config, ",")
	if name == "" {
		name = "cuda"
	}
	path := name
	if !filepath.IsAbs(name) {
		var err error
		path, err = findPJRTPlugin(name)
		if err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("--backend xla:%s: plugin file %s: %v; %s", config, path, err, xlaInstallHint)
	}
	if strings.Contains(filepath.Base(path), "cuda") {
		configureCUDAEnv(path)
	}
	// Compile-time options and the persistent compile cache, each only where the plugin knows it.
	_ = os.Setenv("XLA_FLAGS", xlaCompileFlags(os.Getenv("XLA_FLAGS"), path, os.Getenv(CompileCacheEnv), func(msg string) {
		fmt.Fprintln(os.Stderr, "ifa: warning: "+msg)
	}))
	spec, clientOpts, err := pjrtClientOptions(path, options)
	if err != nil {
		return nil, fmt.Errorf("--backend xla:%s: %v", config, err)
	}
	b, err := xla.NewWithOptions(spec, clientOpts)
	if err != nil {
		return nil, fmt.Errorf("--backend xla:%s: loading PJRT plugin %s: %v", config, path, err)
	}
	return b, nil
}

// pjrtClientOptions splits the options after the plugin name into the PJRT client's own (CUDA
// plugins: "preallocate", "memory_fraction=F") and GoMLX's ("tf32", "shared_buffers", ...), which stay
// in the returned spec. A CUDA client does not preallocate GPU memory unless asked to: XLA's default
// takes 75% of the card at start, hiding the real peak use and starving other processes.
func pjrtClientOptions(path, options string) (string, pjrt.NamedValuesMap, error) {
	spec := path
	isCUDA := strings.Contains(filepath.Base(path), "cuda")
	var opts pjrt.NamedValuesMap
	if isCUDA {
		opts = pjrt.NamedValuesMap{"preallocate": false}
	}
	for _, o := range strings.Split(options, ",") {
		switch key, val, hasVal := strings.Cut(o, "="); {
		case o == "":
		case isCUDA && o == "preallocate":
			opts["preallocate"] = true
		case isCUDA && key == "memory_fraction" && hasVal:
			f, err := strconv.ParseFloat(val, 32)
			if err != nil || f <= 0 || f > 1 {
				return "", nil, fmt.Errorf("option %q: want memory_fraction=F with 0 < F <= 1", o)
			}
			opts["memory_fraction"] = float32(f)
		default:
			spec += "," + o
		}
	}
	return spec, opts, nil
}

// findPJRTPlugin returns the absolute path of the PJRT plugin called name.
func findPJRTPlugin(name string) (string, error) {
	file := "pjrt_c_api_" + name + "_plugin.so"
	var dirs []string
	if v := os.Getenv("PJRT_PLUGIN_LIBRARY_PATH"); v != "" {
		dirs = append(dirs, filepath.SplitList(v)...)
	}
	if v := os.Getenv("LD_LIBRARY_PATH"); v != "" {
		dirs = append(dirs, filepath.SplitList(v)...)
	}
	home, _ := os.UserHomeDir()
	dirs = append(dirs, "/usr/local/lib/go-xla", "/usr/local/lib", "/usr/lib", filepath.Join(home, ".local/lib/go-xla"))
	for _, d := range dirs {
		p := filepath.Join(d, file)
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
	}
	if strings.HasPrefix(name, "cuda") {
		// JAX's pip plugin: site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so.
		// The python3 on PATH is asked only when the usual folders hold no plugin.
		for _, list := range []func() []string{sitePackages, pythonSitePackages} {
			for _, sp := range list() {
				matches, _ := filepath.Glob(filepath.Join(sp, "jax_plugins", "xla_cuda*", "xla_cuda_plugin.so"))
				if len(matches) > 0 {
					return matches[len(matches)-1], nil
				}
			}
		}
	}
	return "", fmt.Errorf("--backend xla:%s: no PJRT plugin %q found; %s", name, file, xlaInstallHint)
}

// sitePackages lists the Python package folders where pip may have installed JAX's plugins.
func sitePackages() []string {
	var pats []string
	if v := os.Getenv("VIRTUAL_ENV"); v != "" {
		pats = append(pats, filepath.Join(v, "lib", "python3*", "site-packages"))
	}
	home, _ := os.UserHomeDir()
	pats = append(pats,
		filepath.Join(home, ".local", "lib", "python3*", "site-packages"),
		filepath.Join(home, ".pyenv", "versions", "*", "lib", "python3*", "site-packages"),
		"/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
		"/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages",
		"/opt/*/lib/python3*/site-packages", "/opt/*/.venv/lib/python3*/site-packages",
		"/opt/*/venv/lib/python3*/site-packages", "/opt/conda/lib/python3*/site-packages",
	)
	var out []string
	for _, p := range pats {
		m, _ := filepath.Glob(p)
		out = append(out, m...)
	}
	return out
}

// pythonSitePackages lists the site-packages folders of the python3 on PATH (a virtual environment
// anywhere); nil without one.
func pythonSitePackages() []string {
	py, err := exec.LookPath("python3")
	if err != nil {
		return nil
	}
	b, err := exec.Command(py, "-c", "import site; print(chr(10).join(site.getsitepackages()))").Output()
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// configureCUDAEnv points XLA at the CUDA tools (ptxas, libdevice) that pip's NVIDIA packages install
// beside JAX's plugin, unless the user already set --xla_gpu_cuda_data_dir. Only a folder that holds
// nvvm/libdevice is named; otherwise XLA keeps its own search (/usr/local/cuda, ...).
func configureCUDAEnv(pluginPath string) {
	flags := os.Getenv("XLA_FLAGS")
	if !strings.Contains(flags, "--xla_gpu_cuda_data_dir") {
		if dir := cudaDataDir(pluginPath); dir != "" {
			_ = os.Setenv("XLA_FLAGS", strings.TrimSpace(flags+" --xla_gpu_cuda_data_dir="+dir))
		}
	}
	if os.Getenv("GOPJRT_CUDA_CHECKS") == "" {
		// The layout check looks for nvidia/ at a fixed place relative to the plugin; XLA_FLAGS above
		// (or XLA's own search) says where the CUDA tools are.
		_ = os.Setenv("GOPJRT_CUDA_CHECKS", "0")
	}
}

// cudaDataDir returns the first folder near a pip-installed plugin
// (site-packages/jax_plugins/xla_cudaNN/xla_cuda_plugin.so) that holds nvvm/libdevice: pip's CUDA 13
// packages put it in site-packages/nvidia/cu13, CUDA 12's in site-packages/nvidia/cuda_nvcc. "" if none.
func cudaDataDir(pluginPath string) string {
	dir := filepath.Dir(pluginPath)
	var roots []string
	for _, nv := range []string{filepath.Join(dir, "..", "..", "nvidia"), filepath.Join(dir, "..", "nvidia")} {
		roots = append(roots, filepath.Join(nv, "cu13"), filepath.Join(nv, "cuda_nvcc"), nv)
	}
	for _, r := range roots {
		if fi, err := os.Stat(filepath.Join(r, "nvvm", "libdevice")); err == nil && fi.IsDir() {
			abs, _ := filepath.Abs(r)
			return abs
		}
	}
	return ""
}
