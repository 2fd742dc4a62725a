package runner_test

import (
	stdctx "context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/runner"
)

// writeToyFashionMNIST writes a Fashion-MNIST-format dataset of n 8×8 images per split into dir:
// image i has class i mod 10, a bright pixel at a place of its class.
func writeToyFashionMNIST(dir string, n int) error {
	for _, prefix := range []string{"train", "t10k"} {
		images := binary.BigEndian.AppendUint32(nil, 0x803)
		labels := binary.BigEndian.AppendUint32(nil, 0x801)
		for _, d := range []int{n, 8, 8} {
			images = binary.BigEndian.AppendUint32(images, uint32(d))
		}
		labels = binary.BigEndian.AppendUint32(labels, uint32(n))
		for i := range n {
			img := make([]byte, 64)
			img[(i%10)*6] = 255
			images, labels = append(images, img...), append(labels, byte(i%10))
		}
		if err := os.WriteFile(filepath.Join(dir, prefix+"-images-idx3-ubyte"), images, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, prefix+"-labels-idx1-ubyte"), labels, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// A Go program trains a model of the zoo as `ifa train` does: the options start from the
// command line's defaults, Check names a bad one, Run writes the run directory.
func ExampleTrain() {
	dir, _ := os.MkdirTemp("", "ifa-example-*")
	defer os.RemoveAll(dir)
	if err := writeToyFashionMNIST(dir, 12); err != nil {
		panic(err)
	}

	opts := runner.Train{Model: "resnet8", Dataset: "fashion-mnist", DataDir: dir}
	if err := runner.Defaults(&opts, nil); err != nil {
		panic(err)
	}
	opts.Epochs, opts.Batch, opts.EvalBatch, opts.Workers = 1, 4, 6, 1
	backend, err := runner.NewBackend("cpu", false)
	if err != nil {
		panic(err)
	}
	defer backend.Finalize()
	res, err := opts.Run(stdctx.Background(), runner.Env{Backend: backend, Log: zerolog.Nop(), Seed: 1,
		RunDir: filepath.Join(dir, "run")})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Record.Name(), res.Result.GlobalStep, "steps,", filepath.Base(res.Result.Checkpoint))
	// Output: resnet8 3 steps, step-000000000003.ckpt
}
