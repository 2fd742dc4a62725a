package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Globals are the flags every subcommand accepts. Each has an IFA_* environment variable.
type Globals struct {
	Backend   string `help:"Compute backend: \"cpu\" (pure Go, the default), \"go\" (GoMLX simplego), \"xla:cuda\" or \"xla:cpu\" (needs an installed PJRT plugin)." default:"cpu" env:"IFA_BACKEND"`
	Seed      int64  `help:"Random seed for initialisation, data order and augmentation." default:"0" env:"IFA_SEED"`
	LogFormat string `help:"Log format: auto (console on a terminal, JSON otherwise), console or json." enum:"auto,console,json" default:"auto" env:"IFA_LOG_FORMAT"`
	LogLevel  string `help:"Log level: debug, info, warn or error." enum:"debug,info,warn,error" default:"info" env:"IFA_LOG_LEVEL"`
	Out       string `help:"Run directory for config.json, metrics.jsonl and checkpoints (default: runs/<command>-<time>)." type:"path" env:"IFA_OUT"`
}

// App is what every subcommand's Run receives: the parsed globals and the logger.
type App struct {
	Globals *Globals
	Log     zerolog.Logger
	// Terminal reports whether standard error is a terminal (progress bars are drawn only then).
	Terminal bool
}

func newApp(g *Globals) (*App, error) {
	terminal := isatty.IsTerminal(os.Stderr.Fd()) || isatty.IsCygwinTerminal(os.Stderr.Fd())
	level, err := zerolog.ParseLevel(g.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", g.LogLevel, err)
	}
	var w io.Writer = os.Stderr
	if g.LogFormat == "console" || (g.LogFormat == "auto" && terminal) {
		w = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !terminal}
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

// runSafely turns a panic (GoMLX reports graph errors by panicking) into an error: this is the one
// place where that happens. IFA_DEBUG=1 keeps the stack trace.
func runSafely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if os.Getenv("IFA_DEBUG") != "" {
				err = fmt.Errorf("%v\n%s", r, debug.Stack())
				return
			}
			msg := fmt.Sprint(r)
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
