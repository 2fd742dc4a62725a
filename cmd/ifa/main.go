// Command ifa is the command-line entry point of the ifa toolkit: IFACLR self-supervised
// pretraining of Vision Transformers, IFACD contrastive knowledge distillation of CIFAR-style CNNs,
// the baselines they are compared with, and their evaluation.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/runner"
)

// CLI is the whole command line: global flags and one struct per subcommand.
type CLI struct {
	Globals

	Pretrain   PretrainCmd   `cmd:"" help:"Self-supervised pretraining (IFACLR, SimCLR, SupCon)."`
	Distill    DistillCmd    `cmd:"" help:"Distil a frozen teacher into a student (IFACD and the baselines)."`
	Train      TrainCmd      `cmd:"" help:"Supervised training of a CNN (teachers and vanilla students)."`
	LinearEval LinearEvalCmd `cmd:"" name:"linear-eval" help:"Linear probe on a frozen encoder's features."`
	KnnEval    KnnEvalCmd    `cmd:"" name:"knn-eval" help:"Weighted cosine kNN evaluation of a frozen encoder."`
	Models     ModelsCmd     `cmd:"" help:"List the model zoo with parameter counts and feature taps."`
	Import     ImportCmd     `cmd:"" help:"Import a PyTorch state dict (torch.save zip or legacy, safetensors) as a run directory (--out RUN)."`
	Export     ExportCmd     `cmd:"" help:"Export a run's model as safetensors under PyTorch's names."`
	Test       TestCmd       `cmd:"" help:"Top-1/top-5 of a classifier checkpoint on a dataset's test split."`
	Params     ParamsCmd     `cmd:"" help:"List the distillation methods' tunable context parameters with their defaults (the keys of ifa distill --param KEY=VALUE)."`
	Data       DataCmd       `cmd:"" help:"Fetch datasets and inspect them."`
	Bench      BenchCmd      `cmd:"" help:"Time training steps of a model (and method) on the chosen backend."`
	Report     ReportCmd     `cmd:"" help:"Tables and plots from distillation run directories."`
	Version    VersionCmd    `cmd:"" help:"Print the ifa version."`
}

// Version of ifa.
const Version = "0.1.0-dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// Exit codes (documented in the README).
const (
	// exitRuntime: the command failed while working (a missing or bad file, a NaN, a write error).
	exitRuntime = 1
	// exitUsage: a flag or IFA_* environment variable is malformed or out of range, or flags
	// conflict; found before any work starts and before anything is written.
	exitUsage = 2
	// exitInterrupted: Ctrl-C or SIGTERM stopped the command (a training run writes a checkpoint
	// first), as a shell reports a process killed by SIGINT.
	exitInterrupted = 130
)

// parserOptions are the kong options of the ifa command line.
func parserOptions() []kong.Option {
	return []kong.Option{
		kong.Name("ifa"),
		cliVars(),
		kong.Description("ifa: layer-wise contrastive pretraining (IFACLR) and contrastive distillation (IFACD) of vision models, on GoMLX."),
		kong.UsageOnError(),
		kong.DefaultEnvars("IFA"),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	}
}

// kongExit carries an exit code requested by kong (--help, a parse error) out of the parser.
type kongExit int

// run runs the ifa command line args (help and usage on stdout, logs on stderr) and returns the
// process's exit code.
func run(args []string, stdout, stderr io.Writer) (code int) {
	var cli CLI
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			code = int(c)
			if code != 0 {
				code = exitUsage
			}
		}
	}()
	parser, err := kong.New(&cli, append(parserOptions(),
		kong.Writers(stdout, stderr), kong.Exit(func(c int) { panic(kongExit(c)) }))...)
	if err != nil {
		fmt.Fprintln(stderr, "ifa:", err)
		return exitRuntime
	}
	ctx, err := parser.Parse(negativeValues(args))
	parser.FatalIfErrorf(err)
	app, err := newApp(&cli.Globals, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "ifa:", err)
		return exitUsage
	}
	err = runSafely(func() error { return ctx.Run(app) })
	if err == nil {
		return 0
	}
	app.Log.Error().Msg(err.Error())
	return exitCode(err)
}

// exitCode is the exit code of a command's error.
func exitCode(err error) int {
	switch {
	case errors.Is(err, fit.ErrInterrupted), errors.Is(err, errInterrupted):
		return exitInterrupted
	case runner.IsUsage(err):
		return exitUsage
	}
	return exitRuntime
}

// usagef is a usage error (runner.UsageError, exit code 2): a flag's value is malformed, out of
// range or conflicts with another flag or with the data it names. The message starts with the flag.
func usagef(format string, args ...any) error { return runner.Usagef(format, args...) }

// errInterrupted is wrapped by commands other than training stopped by Ctrl-C.
var errInterrupted = runner.ErrInterrupted

// negativeValues lets a flag take a negative number as its value: "--lr -1" becomes "--lr=-1"
// and "-b -1" becomes "-b-1", so that the command's check, not the parser, answers (kong reads
// "-1" as a short flag). Anything after "--" is left alone.
func negativeValues(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if i+1 < len(args) && isNegativeNumber(args[i+1]) {
			switch {
			case strings.HasPrefix(a, "--") && len(a) > 2 && !strings.Contains(a, "="):
				out = append(out, a+"="+args[i+1])
				i++
				continue
			case len(a) == 2 && a[0] == '-' && a[1] != '-': // a short flag: "-b -1" becomes "-b-1"
				out = append(out, a+args[i+1])
				i++
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

// isNegativeNumber reports whether s is a negative decimal number ("-1", "-0.5", "-.5", "-1e-3").
func isNegativeNumber(s string) bool {
	if len(s) < 2 || s[0] != '-' || !(s[1] >= '0' && s[1] <= '9' || s[1] == '.') {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run implements the command.
func (c *VersionCmd) Run(app *App) error {
	fmt.Println("ifa", Version)
	return nil
}
