package main

// ModelsCmd is the `ifa models` command.
type ModelsCmd struct{}

// Run implements the command.
func (c *ModelsCmd) Run(app *App) error { return errNotBuilt("models") }
