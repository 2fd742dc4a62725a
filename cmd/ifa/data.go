package main

// DataCmd groups the dataset commands.
type DataCmd struct {
	Fetch DataFetchCmd `cmd:"" help:"Download a dataset (cifar10, cifar100, fashion-mnist, mnist) and verify its checksums."`
	Info  DataInfoCmd  `cmd:"" help:"Counts, classes, image shape and per-channel mean/std of a dataset."`
}

// DataFetchCmd is the `ifa data fetch` command.
type DataFetchCmd struct{}

// Run implements the command.
func (c *DataFetchCmd) Run(app *App) error { return errNotBuilt("data fetch") }

// DataInfoCmd is the `ifa data info` command.
type DataInfoCmd struct{}

// Run implements the command.
func (c *DataInfoCmd) Run(app *App) error { return errNotBuilt("data info") }
