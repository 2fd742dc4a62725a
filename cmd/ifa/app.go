package main

import (
	stdctx "context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/internal/catch"
	"github.com/ifa-toolkit/ifa/runner"
)

// Globals are the flags every subcommand accepts. Each has an IFA_* environment variable.
type Globals struct {
	Backend       string `help:"Compute backend: \"cpu\" (pure Go, the default; \"cpu:isa=avx2\" or \"cpu:isa=generic\" forces a kernel path, \"cpu:workers=N\" caps its goroutines, \"cpu:winograd=off\", \"cpu:directconv=off\", \"cpu:fusion=off\" turn kernel choices off, \"cpu:winograd=f2\" or \"f4\" forces Winograd with 2x2 or 4x4 tiles: F(2x2,3x3) or F(4x4,3x3) and F(3x3,2x2) or F(3x3,4x4) for weight gradients), \"go\" (GoMLX simplego), \"xla:cuda\" or \"xla:cpu\" (needs an installed PJRT plugin)." default:"cpu" env:"IFA_BACKEND"`
	Seed          int64  `help:"Random seed for initialisation, data order and augmentation." default:"0" env:"IFA_SEED"`
	LogFormat     string `help:"Log format: auto (console on a terminal, JSON otherwise), console or json." enum:"auto,console,json" default:"auto" env:"IFA_LOG_FORMAT"`
	LogLevel      string `help:"Log level: debug, info, warn or error." enum:"debug,info,warn,error" default:"info" env:"IFA_LOG_LEVEL"`
	Out           string `help:"Run directory for config.json, metrics.jsonl and checkpoints (default: runs/<command>-<time>)." type:"path" env:"IFA_OUT"`
	Devices       int    `help:"Devices each training step is split over (data parallelism: every batch is divided evenly, so --batch must be a multiple; batch norms and contrastive losses still see the whole batch; --lr stays that of the global batch). 1 (the default) trains on one device; more need a backend with that many, e.g. --backend xla:cuda on a machine with several GPUs." default:"1" env:"IFA_DEVICES"`
	CompileCache  string `name:"compile-cache" help:"Persistent compile cache of the XLA backends (XLA's GPU kernel and autotuning caches, kept per plugin file): auto (the default: <user cache folder>/ifa, e.g. ~/.cache/ifa), off, or a folder." default:"auto" env:"IFA_COMPILE_CACHE"`
	Deterministic bool   `help:"Ask the backend for run-to-run identical results: on xla:cuda, sets XLA's --xla_gpu_deterministic_ops=true in XLA_FLAGS (deterministic reductions and scatters, slower); the cpu backend is always deterministic (the same bits on any core count), so it changes nothing there." env:"IFA_DETERMINISTIC"`
}

// App is what every subcommand's Run receives: the parsed globals and the logger.
type App struct {
	Globals *Globals
	Log     zerolog.Logger
	// Terminal reports whether standard error is a terminal (progress bars are drawn only then).
	Terminal bool
}

// newApp sets up the logger on stderr; progress bars are drawn only when stderr is the process's
// standard error and a terminal.
func newApp(g *Globals, stderr io.Writer) (*App, error) {
	terminal := stderr == io.Writer(os.Stderr) && (isatty.IsTerminal(os.Stderr.Fd()) || isatty.IsCygwinTerminal(os.Stderr.Fd()))
	level, err := zerolog.ParseLevel(g.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", g.LogLevel, err)
	}
	w := stderr
	if g.LogFormat == "console" || (g.LogFormat == "auto" && terminal) {
		w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly, NoColor: !terminal}
	}
	log := zerolog.New(w).Level(level).With().Timestamp().Logger()
	return &App{Globals: g, Log: log, Terminal: terminal}, nil
}

// RunDir returns the run directory: --out, or runs/<command>-<timestamp>.
func (a *App) RunDir(command string) string {
	if a.Globals.Out != "" {
		return a.Globals.Out
	}
	return fmt.Sprintf("runs/%s-%s", strings.ReplaceAll(command, " ", "-"), time.Now().Format("20060102-150405"))
}

// NewBackend creates the backend named by --backend (runner.NewBackend), with --deterministic.
func (a *App) NewBackend() (backends.Backend, error) {
	if a.Globals.CompileCache != "" {
		_ = os.Setenv(runner.CompileCacheEnv, a.Globals.CompileCache)
	}
	return runner.NewBackend(a.Globals.Backend, a.Globals.Deterministic)
}

// env is the runner.Env of a command on backend writing runDir; cancel is its interruptContext.
func (a *App) env(backend backends.Backend, runDir string, cancel stdctx.Context) runner.Env {
	return runner.Env{Backend: backend, Log: a.Log, Terminal: a.Terminal, Seed: a.Globals.Seed,
		Devices: a.Globals.Devices, RunDir: runDir, Abort: abortOf(cancel)}
}

// checkDevices refuses a --devices below 1 (the training commands call it).
func (a *App) checkDevices() error {
	if a.Globals.Devices < 1 {
		return usagef("--devices %d: want >= 1", a.Globals.Devices)
	}
	return nil
}

// runSafely turns a panic (GoMLX reports graph errors by panicking) into an error: this is the one
// place where that happens. IFA_DEBUG=1 keeps the stack trace.
func runSafely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if os.Getenv("IFA_DEBUG") != "" {
				err = fmt.Errorf("%w\n%s", catch.Error(r), debug.Stack())
				return
			}
			msg := catch.Error(r).Error()
			if i := strings.Index(msg, "\n"); i > 0 && os.Getenv("IFA_DEBUG") == "" {
				msg = msg[:i] + " (set IFA_DEBUG=1 for details)"
			}
			err = fmt.Errorf("%s", msg)
		}
	}()
	return f()
}

// errNotBuilt is what a subcommand that is not implemented yet returns.
func errNotBuilt(command string) error {
	return fmt.Errorf("%q is not built yet in ifa %s: see the README's command table for what is available", command, Version)
}
