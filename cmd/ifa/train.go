package main

// TrainCmd is the `ifa train` command.
type TrainCmd struct{}

// Run implements the command.
func (c *TrainCmd) Run(app *App) error { return errNotBuilt("train") }
