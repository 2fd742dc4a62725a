package main

// PretrainCmd groups the pretraining commands.
type PretrainCmd struct {
	Vit PretrainVitCmd `cmd:"" name:"vit" help:"Pretrain a Vision Transformer with IFACLR (lwclr), simlwclr, SimCLR or SupCon."`
}

// PretrainVitCmd is the `ifa pretrain vit` command.
type PretrainVitCmd struct{}

// Run implements the command.
func (c *PretrainVitCmd) Run(app *App) error { return errNotBuilt("pretrain vit") }
