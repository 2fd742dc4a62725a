package main

// KnnEvalCmd is the `ifa knn-eval` command.
type KnnEvalCmd struct{}

// Run implements the command.
func (c *KnnEvalCmd) Run(app *App) error { return errNotBuilt("knn-eval") }
