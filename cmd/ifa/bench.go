package main

// BenchCmd is the `ifa bench` command.
type BenchCmd struct{}

// Run implements the command.
func (c *BenchCmd) Run(app *App) error { return errNotBuilt("bench") }
