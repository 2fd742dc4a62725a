// Package report turns distillation run directories into the talk's tables (METHODS.md §9):
// accuracy, peak memory, parameters and training time, rows = methods, columns = teacher →
// student pairs, with an average column and several seeds averaged (mean ± std); as Markdown and
// CSV, plus PNG plots (test accuracy per epoch, final accuracy bars).
//
// It owns summary.json, the record `ifa distill` writes when a run ends, and reads metrics.jsonl.
// It does no training and builds no graphs: it must not import gomlx, fit or the model packages.
package report
