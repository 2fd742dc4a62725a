package main

// LinearEvalCmd is the `ifa linear-eval` command.
type LinearEvalCmd struct{}

// Run implements the command.
func (c *LinearEvalCmd) Run(app *App) error { return errNotBuilt("linear-eval") }
