package distill_test

import (
	stdctx "context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// toyData is a labelled set of 16 grey 8×8 images of 4 classes, each class a bright pixel.
func toyData() *data.Dataset {
	ds := &data.Dataset{Name: "toy", Split: "train", Images: make([]uint8, 16*64), Labels: make([]int32, 16),
		Classes: []string{"a", "b", "c", "d"}, H: 8, W: 8, C: 1}
	for i := range ds.Labels {
		ds.Labels[i] = int32(i % 4)
		ds.Images[i*64+(i%4)*16] = 255
	}
	return ds
}

// trainTeacher trains net for one epoch with cross-entropy and returns its run directory, as
// `ifa train` would.
func trainTeacher(dir string, net distill.Encoder, train data.Loader) string {
	runDir := filepath.Join(dir, "teacher")
	loss := func(ctx *context.Context, in fit.Inputs) fit.Loss {
		return fit.Classification(net(ctx, in.Images).Logits, in.Labels)
	}
	cfg := fit.Config{Epochs: 1, RunDir: runDir, Optimizer: fit.Optimizer{Kind: fit.OptimizerSGD},
		Schedule: fit.Schedule{Kind: fit.ScheduleConstant, BaseLR: 0.1}}
	if _, err := fit.Run(stdctx.Background(), fit.Job{Backend: testutil.Backend(), Context: context.New(), Train: train, Loss: loss}, cfg); err != nil {
		panic(err)
	}
	return runDir
}

// Distil a resnet8 teacher into a resnet8 student with FitNets (hint) and the IFARD recipe.
func Example() {
	backend := testutil.Backend()
	dir, _ := os.MkdirTemp("", "distill-example")
	defer os.RemoveAll(dir)
	train, _ := data.NewLoader(toyData(), data.LoaderConfig{BatchSize: 8, Shuffle: true, DropLast: true, Workers: 1})
	resnet8, _ := cnn.Get("resnet8")
	net := func(ctx *context.Context, images *graph.Node) backbone.Features { return resnet8.Build(ctx, images, 4) }
	teacherRun := trainTeacher(dir, net, train)

	method, _ := distill.Get("hint")
	obj := distill.NewObjective(method, net, net) // L = CE + KD + 100·L_hint
	ctx := context.New()
	if err := distill.ImportTeacher(ctx, teacherRun, ""); err != nil {
		panic(err)
	}
	s, _, _ := distill.DescribeEncoder(backend, net, 8, 8, 1)
	plan, err := obj.Check(ctx, s, s)
	if err != nil {
		panic(err)
	}
	recipe := distill.Recipes["ifard"]
	cfg := fit.Config{Epochs: 2, RunDir: filepath.Join(dir, "student"), Frozen: []string{distill.TeacherScope},
		Optimizer: recipe.Optimizer(0.9, 5e-4), Schedule: fit.Schedule{Kind: fit.ScheduleConstant, BaseLR: recipe.BaseLR(0, false)}}
	res, err := fit.Run(stdctx.Background(), fit.Job{Backend: backend, Context: ctx, Train: train, Loss: obj.Loss}, cfg)
	if err != nil {
		panic(err)
	}
	fmt.Println(plan.Label, obj.Beta, res.Epochs, res.GlobalStep, slices.Sorted(maps.Keys(res.TrainTerms)))
	// Output: hint 100 2 4 [ce hint kd top1]
}
