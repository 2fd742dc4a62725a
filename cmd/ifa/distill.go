package main

// DistillCmd is the `ifa distill` command.
type DistillCmd struct{}

// Run implements the command.
func (c *DistillCmd) Run(app *App) error { return errNotBuilt("distill") }
