package main

// ReportCmd is the `ifa report` command.
type ReportCmd struct{}

// Run implements the command.
func (c *ReportCmd) Run(app *App) error { return errNotBuilt("report") }
