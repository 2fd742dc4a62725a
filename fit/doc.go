// Package fit owns the one training loop every ifa command uses: optimizers (SGD with plain or
// Nesterov momentum, AdamW, weight-decay exclusions for biases and norm parameters), learning-rate
// schedules (multi-step, warm-up + cosine, constant), gradient-norm clipping, frozen sub-models
// (teachers) that receive no gradient and no optimizer state, periodic evaluation, metrics
// (metrics.jsonl), progress output, the NaN/Inf guard, and atomic, resumable checkpoints.
//
// A run directory holds config.json (WriteConfig), metrics.jsonl (one JSON object per epoch) and
// checkpoints/step-<global step>.ckpt (format documented in checkpoint.go). Optimizer state lives
// in context variables under OptimizerScope, so a checkpoint of the context is a complete resume
// point together with its LoopState.
//
// Job.Parallel (NewDataParallel) trains data-parallel over several devices of one backend with
// GoMLX's AutoSharding: the batch inputs are split along axis 0 over a one-axis "replica" mesh,
// variables and the learning rate are replicated, and XLA's partitioner adds the collectives
// (distributed.go; docs/GPU.md). A nil Parallel keeps the single-device path unchanged.
//
// It must not know about any particular model, loss or dataset: callers hand it a loss function
// built on a GoMLX context and a batch source.
package fit
