package cpu

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

// options are a backend's switches, set by the config string given to New. The zero value is not
// the default: see defaultOptions. Turning a switch off changes which kernels run, never which
// ops are supported; results stay within the tolerance of the float64 references (tests compare
// the paths).
type options struct {
	// directConv lets float32 convolutions pack their GEMM operands straight from the
	// channels-last input (kernels.SconvIm2col and kernels.SconvIm2colT) instead of building
	// im2col blocks first (config directconv=on|off).
	directConv bool
	// winograd lets float32 3×3 stride-1 convolutions, their input gradients and their kernel
	// gradients use Winograd, and picks the forward algorithm (see winogradGeometry; config
	// winograd=on|off|f2|f4).
	winograd winoMode
	// fusion fuses chains of float32 elementwise ops at compile time (see fuseChains; config
	// fusion=on|off).
	fusion bool
	// opStats times every op of every execution from the start (config opstats=on|off); see
	// Backend.EnableOpStats and Backend.OpStatsReport.
	opStats bool
}

// winoMode is the Winograd setting of a backend: the algorithm of forward convolutions and input
// gradients (F(2×2, 3×3) or F(4×4, 3×3)) and of kernel gradients (F(3×3, 2×2) or F(3×3, 4×4)).
type winoMode int

const (
	winoOff  winoMode = iota // no Winograd (config winograd=off)
	winoAuto                 // F(4×4, 3×3) and F(3×3, 4×4) where kernels.WinogradF4Pays and WinogradF4FilterPays say so, else F(2×2, 3×3) and F(3×3, 2×2) (on)
	winoF2                   // F(2×2, 3×3) and F(3×3, 2×2) only (f2)
	winoF4                   // F(4×4, 3×3) and F(3×3, 4×4) only (f4)
)

// defaultOptions are the options of New("").
func defaultOptions() options {
	return options{directConv: true, winograd: winoAuto, fusion: true}
}

// configHelp lists the options New accepts.
const configHelp = "workers=N, isa=avx512|avx2|generic, directconv=on|off, winograd=on|off|f2|f4, fusion=on|off, opstats=on|off"

// parseConfig returns the options of a backend config string (a comma-separated list of key=value
// options, see New) and applies the process-wide ones (workers, isa).
func parseConfig(config string) (options, error) {
	o := defaultOptions()
	if strings.TrimSpace(config) == "" {
		return o, nil
	}
	for _, opt := range strings.Split(config, ",") {
		key, val, _ := strings.Cut(strings.TrimSpace(opt), "=")
		var flag *bool
		switch key {
		case "workers":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return o, fmt.Errorf("cpu: backend config %q: workers=%q: want an integer >= 1", config, val)
			}
			kernels.SetMaxThreads(n)
			continue
		case "isa":
			isa, err := kernels.ParseISA(val)
			if err == nil {
				_, err = kernels.SetISA(isa)
			}
			if err != nil {
				return o, fmt.Errorf("cpu: backend config %q: %w", config, err)
			}
			continue
		case "directconv":
			flag = &o.directConv
		case "winograd":
			switch strings.ToLower(val) {
			case "f2":
				o.winograd = winoF2
			case "f4":
				o.winograd = winoF4
			default:
				on, ok := parseSwitch(val)
				if !ok {
					return o, fmt.Errorf("cpu: backend config %q: winograd=%q: want on, off, f2 or f4", config, val)
				}
				o.winograd = winoOff
				if on {
					o.winograd = winoAuto
				}
			}
			continue
		case "fusion":
			flag = &o.fusion
		case "opstats":
			flag = &o.opStats
		default:
			return o, fmt.Errorf("cpu: backend config %q: unknown option %q (want %s)", config, opt, configHelp)
		}
		on, ok := parseSwitch(val)
		if !ok {
			return o, fmt.Errorf("cpu: backend config %q: %s=%q: want on or off", config, key, val)
		}
		*flag = on
	}
	return o, nil
}

// parseSwitch reads an on/off value: on, off, true, false, 1 or 0.
func parseSwitch(s string) (on, ok bool) {
	switch strings.ToLower(s) {
	case "on", "true", "1":
		return true, true
	case "off", "false", "0":
		return false, true
	}
	return false, false
}
