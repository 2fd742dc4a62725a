// Package runner runs ifa's training jobs end to end, as the command line does and without it:
// self-supervised pretraining of a ViT (PretrainViT), and the helpers those runs share (the
// datasets' train and test splits with their normalisation, evaluation loaders, data
// parallelism and option checks).
//
// A run's options are a plain struct whose fields carry the command line's flag names, defaults
// and help as struct tags (the ifa command embeds them); Defaults fills a Go caller's struct with
// the same defaults. Check reports the first bad option as a UsageError naming the flag. Run
// takes an Env (backend, logger, seed, run directory) and a context whose cancellation stops the
// run at the end of the current step with a checkpoint, and returns what the command prints.
//
// runner sits at the top of the library: it may import every library package, and only cmd/...
// imports it.
package runner
