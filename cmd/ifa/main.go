// Command ifa is the command-line entry point of the ifa toolkit: IFACLR self-supervised
// pretraining of Vision Transformers, IFACD contrastive knowledge distillation of CIFAR-style CNNs,
// the baselines they are compared with, and their evaluation.
package main

import (
	"fmt"
	"os"

	"github.com/alecthomas/kong"
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

func main() {
	var cli CLI
	ctx := kong.Parse(&cli,
		kong.Name("ifa"),
		cliVars(),
		kong.Description("ifa: layer-wise contrastive pretraining (IFACLR) and contrastive distillation (IFACD) of vision models, on GoMLX."),
		kong.UsageOnError(),
		kong.DefaultEnvars("IFA"),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	app, err := newApp(&cli.Globals)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ifa:", err)
		os.Exit(2)
	}
	err = runSafely(func() error { return ctx.Run(app) })
	if err != nil {
		app.Log.Error().Msg(err.Error())
		os.Exit(1)
	}
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run implements the command.
func (c *VersionCmd) Run(app *App) error {
	fmt.Println("ifa", Version)
	return nil
}
