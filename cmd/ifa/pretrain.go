package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/gomlx/gomlx/backends"

	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/runner"
)

// PretrainCmd groups the pretraining commands.
type PretrainCmd struct {
	Vit PretrainVitCmd `cmd:"" name:"vit" help:"Pretrain a Vision Transformer self-supervised: IFACLR (lwclr) and the other methods of --method."`
}

// PretrainVitCmd is the `ifa pretrain vit` command: self-supervised pretraining of a ViT encoder
// (METHODS.md §1), with an online weighted-kNN monitor and resumable checkpoints. Its flags are
// the fields of runner.PretrainViT.
type PretrainVitCmd struct {
	runner.PretrainViT `embed:""`

	stdout  io.Writer        // standard output (tests capture it)
	backend backends.Backend // set by tests: the shared test backend
}

// Run implements the command.
func (c *PretrainVitCmd) Run(app *App) error {
	if err := c.Check(); err != nil {
		return err
	}
	if err := app.checkDevices(); err != nil {
		return err
	}
	runDir, err := prepareRunDir(app, "pretrain vit", c.Resume)
	if err != nil {
		return err
	}
	backend, release, err := commandBackend(app, c.backend)
	if err != nil {
		return err
	}
	defer release()
	cancel, stop := interruptContext(app.Log)
	defer stop()
	res, err := c.PretrainViT.Run(cancel, app.env(backend, runDir, cancel))
	if errors.Is(err, fit.ErrInterrupted) {
		return fmt.Errorf("%w; resume with: ifa pretrain vit --out %s --resume (and the same flags)", err, runDir)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(stdout(c.stdout), "run directory: %s\ncheckpoint: %s\n", res.RunDir, res.Checkpoint)
	if v, ok := res.KNNTop1(); ok {
		fmt.Fprintf(stdout(c.stdout), "online kNN (k=%d, T=%g) top-1: %.2f%%\n", c.KnnK, c.KnnT, 100*v)
	}
	return nil
}
