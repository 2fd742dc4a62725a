package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ifa-toolkit/ifa/runner"
)

// BenchCmd is the `ifa bench` command: it times full training steps of a model and method
// (runner.Bench, whose fields are its flags).
type BenchCmd struct {
	runner.Bench `embed:""`
}

// Run implements the command.
func (c *BenchCmd) Run(app *App) error {
	backend, err := app.NewBackend()
	if err != nil {
		return err
	}
	defer backend.Finalize()
	if !strings.HasPrefix(c.Model, "vit:") {
		if err := checkTrainsCNNs(app, backend); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	res, err := c.Bench.Run(app.env(backend, "", nil))
	if err != nil {
		return err
	}
	return c.write(os.Stdout, res)
}

// write prints the result in the chosen format.
func (c *BenchCmd) write(w io.Writer, r *runner.BenchResult) error {
	if c.Format == "json" {
		return json.NewEncoder(w).Encode(r)
	}
	name := r.Model + " " + r.Method
	if r.Teacher != "" {
		name += " (teacher " + r.Teacher + ")"
	}
	on := r.Backend
	if r.Kernels != "" {
		on += " (" + r.Kernels + " kernels)"
	}
	dev := ""
	if r.DevicePeakBytes > 0 {
		dev = fmt.Sprintf(" (step on the device: %.0f MiB, %s)", float64(r.DevicePeakBytes)/(1<<20), r.DeviceMemoryMeasure)
	}
	_, err := fmt.Fprintf(w, "ifa %s batch %d %s on %s: %.1f images/s, %.1f ms/step (median of %d), %.1f ms CPU/step, compile %.1f s, peak %.0f MiB RSS%s, %d trainable params\n",
		name, r.Batch, r.Input, on, r.ImagesPerSec, 1000*r.StepSecondsMedian, r.Steps, 1000*r.CPUSecondsPerStep, r.CompileSeconds,
		float64(r.PeakMemoryBytes)/(1<<20), dev, r.TrainableParams)
	return err
}
