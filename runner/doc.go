// Package runner runs ifa's jobs end to end as library calls, the ifa command's and any Go
// program's alike:
//
//   - PretrainViT: self-supervised pretraining of a ViT (ssl's methods) with an online kNN monitor;
//   - Train: supervised training of a model of the zoo;
//   - Distill: distillation of a frozen teacher into a student (distill.Objective), writing
//     summary.json;
//   - EvalInput.Features: a frozen encoder's train and test features for kNN and linear probes;
//   - Import, Export, Test: PyTorch state dicts in and out, a classifier's test accuracy;
//   - Bench: the timing of fit's compiled training step;
//   - Fetch, DataInfo: dataset downloads and descriptions; NewBackend: the backend of a spec
//     ("cpu", "go", "xla:cuda").
//
// A job's options are a plain struct whose fields carry the command line's flag names, defaults
// and help as struct tags (the ifa command embeds them, and config.json records them); Defaults
// fills a Go caller's struct with the same defaults. Check reports the first bad option as a
// UsageError naming the flag. Run takes an Env (backend, logger, seed, run directory) and, for the
// training jobs, a context whose cancellation stops the run at the end of the current step with a
// checkpoint; it returns what the command prints. Nothing is written before every option and
// the data it names have been checked.
//
// A Go program pretrains like this:
//
//	var opts runner.PretrainViT
//	if err := runner.Defaults(&opts, nil); err != nil { ... }
//	opts.Epochs, opts.DataDir = 5, "/data"
//	backend, err := runner.NewBackend("cpu", false)
//	...
//	res, err := opts.Run(ctx, runner.Env{Backend: backend, Log: log, RunDir: "runs/vit"})
//
// runner sits at the top of the library: it may import every library package, and only cmd/...
// imports it.
package runner
