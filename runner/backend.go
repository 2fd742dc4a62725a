package runner

import (
	"fmt"
	"os"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"

	"github.com/ifa-toolkit/ifa/internal/cpu"
)

// NewBackend creates the backend named by spec (ifa's --backend): "cpu[:options]" is ifa's own
// pure-Go backend, "go[:options]" GoMLX's simplego, "xla:cuda", "xla:cpu" or "xla:/abs/plugin.so"
// GoMLX's XLA backend with a PJRT plugin found on this machine (nothing is downloaded).
// deterministic sets XLA's deterministic-ops option for xla backends (before the plugin reads
// XLA_FLAGS); the cpu backend is deterministic anyway. It installs ifa's gradients first
// (cpu.RegisterGradients).
func NewBackend(spec string, deterministic bool) (backends.Backend, error) {
	// ifa's gradients (exact convolution gradients, Rsqrt, Pad, ...) for every backend.
	cpu.RegisterGradients()
	name, config, _ := strings.Cut(spec, ":")
	switch name {
	case "cpu":
		b, err := cpu.New(config)
		if err != nil {
			return nil, err
		}
		return withCompileLog(b), nil
	case "go":
		b, err := simplego.New(config)
		if err != nil {
			return nil, err
		}
		return withCompileLog(b), nil
	case "xla":
		if deterministic {
			_ = os.Setenv("XLA_FLAGS", setXLAFlag(os.Getenv("XLA_FLAGS"), xlaDeterministicOps, "true"))
		}
		b, err := newXLABackend(config)
		if err != nil {
			return nil, err
		}
		return withDeviceMemory(b), nil
	}
	return nil, fmt.Errorf("--backend %q: unknown backend, want cpu, go, xla:cuda or xla:cpu", spec)
}

// xlaDeterministicOps is XLA's option for run-to-run deterministic GPU kernels (reductions and
// scatters without atomics, autotuning restricted to deterministic algorithms).
const xlaDeterministicOps = "--xla_gpu_deterministic_ops"

// setXLAFlag returns the XLA_FLAGS value flags with the option name set to value: XLA splits
// XLA_FLAGS on whitespace, so earlier settings of name (with or without a value) are dropped, the
// other options kept in order, and name=value appended.
func setXLAFlag(flags, name, value string) string {
	var out []string
	for _, f := range strings.Fields(flags) {
		if f == name || strings.HasPrefix(f, name+"=") {
			continue
		}
		out = append(out, f)
	}
	return strings.Join(append(out, name+"="+value), " ")
}
