package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
	spec := path
	if options != "" {
		spec += "," + options
	}
	b, err := xla.New(spec)
	if err != nil {
		return nil, fmt.Errorf("--backend xla:%s: loading PJRT plugin %s: %v", config, path, err)
	}
	return b, nil
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
		for _, sp := range sitePackages() {
			matches, _ := filepath.Glob(filepath.Join(sp, "jax_plugins", "xla_cuda*", "xla_cuda_plugin.so"))
			if len(matches) > 0 {
				return matches[len(matches)-1], nil
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
		"/opt/*/lib/python3*/site-packages", "/opt/conda/lib/python3*/site-packages",
	)
	var out []string
	for _, p := range pats {
		m, _ := filepath.Glob(p)
		out = append(out, m...)
	}
	return out
}

// configureCUDAEnv points XLA at the CUDA tools (ptxas, libdevice) that JAX's pip packages install
// beside the plugin (site-packages/nvidia), unless the user already set --xla_gpu_cuda_data_dir.
func configureCUDAEnv(pluginPath string) {
	flags := os.Getenv("XLA_FLAGS")
	if !strings.Contains(flags, "--xla_gpu_cuda_data_dir") {
		// plugin at site-packages/jax_plugins/xla_cudaNN/xla_cuda_plugin.so → site-packages/nvidia.
		for _, cand := range []string{
			filepath.Join(filepath.Dir(pluginPath), "..", "..", "nvidia"),
			filepath.Join(filepath.Dir(pluginPath), "..", "nvidia"),
		} {
			if fi, err := os.Stat(cand); err == nil && fi.IsDir() {
				abs, _ := filepath.Abs(cand)
				flags = strings.TrimSpace(flags + " --xla_gpu_cuda_data_dir=" + abs)
				_ = os.Setenv("XLA_FLAGS", flags)
				break
			}
		}
	}
	if os.Getenv("GOPJRT_CUDA_CHECKS") == "" {
		// The layout check looks for nvidia/ at a fixed place relative to the plugin; XLA_FLAGS above
		// already says where the CUDA tools are.
		_ = os.Setenv("GOPJRT_CUDA_CHECKS", "0")
	}
}
