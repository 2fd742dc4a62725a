package runner

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/catch"
	"github.com/ifa-toolkit/ifa/internal/cpu"
	"github.com/ifa-toolkit/ifa/ssl"
	"github.com/ifa-toolkit/ifa/vit"
)

// Bench times (the options of `ifa bench`) full training steps — forward, backward and an
// SGD-momentum update (lr 0.05, momentum 0.9, weight decay 5e-4) — of a model and method on one
// fixed random batch, after compiling the step and a few warm-up steps, and reports images/s, the
// median step time and the process's peak memory. Data loading is not part of the step.
//
// The steps are those of bench/peers/train_step.py, the PyTorch peer:
//   - none (CNN): cross-entropy of the model's logits;
//   - kd: + KD(T = 4) against a frozen teacher (evaluation-mode batch norm, no gradient);
//   - ifacd: + 0.8 · IFACD (METHODS.md §2.3–2.4), distill.IFACD with its defaults (the talk's
//     configuration): the teacher's last --ifacd-layers pooled taps through per-tap rescalers
//     (Linear and BN1d) and one shared teacher projector (Linear(d_t, 128) and BN1d), the student's
//     pooled feature through its projector (Linear(d_s, 128), BN1d), L2-normalised, SupCon 'all'
//     without labels at τ = 0.07;
//   - lwclr (ViT): IFACLR (METHODS.md §1.3): the last two blocks' CLS vectors (after the shared
//     LayerNorm; the earlier one stop-gradient) through the shared LN-GELU projector, SupCon 'all'
//     without labels at τ = 0.5;
//   - any other pretraining method of `ifa pretrain vit --method` (ViT): its loss with its default
//     heads (ssl.PretrainLoss), the batch repeated as every augmentation, and the momentum update
//     of the methods that keep a momentum network;
//   - none (ViT): cross-entropy of a linear head on the final CLS vector.
//
// The teacher and student start from random weights: a training step costs the same.
type Bench struct {
	Model       string  `help:"Model: a CNN of the zoo (see 'ifa models') or vit:CONFIG (vit:nano, vit:micro, vit:ti_4, ...)." required:""`
	Method      string  `help:"Training step: none (cross-entropy); kd or ifacd (CNN students with a frozen teacher); for a ViT, a pretraining method of 'ifa pretrain vit --method' (lwclr, byol, ...); auto means none for a CNN and lwclr for a ViT." default:"auto"`
	Teacher     string  `name:"teacher-model" aliases:"teacher" help:"Model of the frozen teacher of kd and ifacd, as distill's --teacher-model (default: resnet32x4 for resnet8x4, resnet56 for resnet8 and resnet20)."`
	Batch       int     `help:"Batch size." default:"64"`
	Steps       int     `help:"Timed steps." default:"20"`
	Warmup      int     `help:"Untimed steps after the compiling one." default:"3"`
	Input       string  `help:"Input image shape HxWxC." default:"32x32x3"`
	Classes     int     `help:"Number of classes of the classifiers." default:"100"`
	Patch       int     `help:"ViT patch size (0: the configuration's)." default:"0"`
	IFACDLayers int     `name:"ifacd-layers" help:"${ifacd_layers_doc}." default:"${ifacd_layers}"`
	Beta        float64 `help:"IFACD loss weight (IFACD's default β)." default:"${ifacd_beta}"`
	ProjHidden  int     `name:"proj-hidden" help:"ViT pretraining methods: hidden width of the projector; 0: the method's (ifa params lists them)." default:"0"`
	ProjOut     int     `name:"proj-out" help:"ViT pretraining methods: output width of the projector; 0: the method's (ifa params lists them)." default:"0"`
	Format      string  `help:"Output: text, or json (one object with images_per_sec, step_seconds_median, peak_memory_bytes, ...)." enum:"text,json" default:"text"`
	CPUProfile  string  `name:"cpuprofile" hidden:"" help:"Write a CPU profile of the timed steps to this file." type:"path"`
	OpStats     bool    `name:"op-stats" hidden:"" help:"Print the cpu backend's time per op kind and shape over the timed steps (stderr)."`
	MemProfile  string  `name:"memprofile" hidden:"" help:"Write an allocation profile of the timed steps to this file." type:"path"`
}

// Bench optimiser and loss constants, those of bench/peers/train_step.py.
const (
	benchLR          = 0.05
	benchMomentum    = 0.9
	benchWeightDecay = 5e-4
	benchKDT         = 4.0
)

// benchDefaultTeacher is the teacher of each student when --teacher is not given (the talk's pairs).
func benchDefaultTeacher(student string) string {
	switch student {
	case "resnet8x4":
		return "resnet32x4"
	case "resnet8", "resnet20":
		return "resnet56"
	}
	return ""
}

// BenchResult is the JSON output of `ifa bench`.
type BenchResult struct {
	Peer    string `json:"peer"`
	Model   string `json:"model"`
	Method  string `json:"method"`
	Teacher string `json:"teacher,omitempty"`
	Batch   int    `json:"batch"`
	Input   string `json:"input"`
	Backend string `json:"backend"`
	// Kernels is the cpu backend's kernel path (avx512, avx2 or generic); empty on other backends.
	Kernels string `json:"kernels,omitempty"`
	Steps   int    `json:"steps"`
	Warmup  int    `json:"warmup"`
	// TrainableParams counts the parameters the step updates (student and heads).
	TrainableParams int64 `json:"trainable_params"`
	// ImagesPerSec is Batch / StepSecondsMedian.
	ImagesPerSec      float64 `json:"images_per_sec"`
	StepSecondsMedian float64 `json:"step_seconds_median"`
	StepSecondsMin    float64 `json:"step_seconds_min"`
	StepSecondsMean   float64 `json:"step_seconds_mean"`
	// CompileSeconds is the first call: building and compiling the graph, plus one step.
	CompileSeconds float64 `json:"compile_seconds"`
	// BackendCompileSeconds (XLA backends) is the part of it spent in the backend's compiler, all
	// the executables of the run (variable initialisation and the step) together.
	BackendCompileSeconds float64 `json:"backend_compile_seconds,omitempty"`
	WarmupSeconds         float64 `json:"warmup_seconds"`
	// PeakMemoryBytes is the process's peak resident set size (VmHWM), PeakMemoryMeasure says so.
	PeakMemoryBytes   int64  `json:"peak_memory_bytes"`
	PeakMemoryMeasure string `json:"peak_memory_measure"`
	// DevicePeakBytes (XLA backends only) is the device memory the training step needs, from the
	// compiled executable's statistics; DeviceMemoryMeasure says what is counted
	// (MeasureXLAExecutable). Compare with PyTorch's torch.cuda.max_memory_allocated.
	DevicePeakBytes     int64   `json:"device_peak_bytes,omitempty"`
	DeviceMemoryMeasure string  `json:"device_memory_measure,omitempty"`
	FinalLoss           float64 `json:"final_loss"`
	// CPUSecondsPerStep is the process's CPU time (user + system, all threads) over the timed
	// steps divided by their number: unlike the wall time, it does not grow when other processes
	// share the cores.
	CPUSecondsPerStep float64 `json:"cpu_seconds_per_step"`
}

// kernelPath returns the kernel path of ifa's cpu backend, or "" for other backends.
func kernelPath(b backends.Backend) string {
	if b.Name() != cpu.Name {
		return ""
	}
	return cpu.KernelPath()
}

// benchSetup is a resolved benchmark: its loss, frozen scopes, context parameters and description.
type benchSetup struct {
	loss    fit.LossFn
	frozen  []string
	params  map[string]any
	method  string
	teacher string
	ema     *fit.EMA // momentum copies updated after the optimizer step
}

// setup resolves the model, method and teacher flags into a loss function.
func (c *Bench) setup(input cnn.MapShape) (*benchSetup, error) {
	method := c.Method
	if name, ok := strings.CutPrefix(c.Model, "vit:"); ok {
		cfg, err := vit.Get(name)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		cfg = cfg.WithImage(input.H, input.W, input.C)
		if c.Patch > 0 {
			cfg = cfg.WithPatch(c.Patch)
		}
		if method == "auto" {
			method = string(ssl.MethodLWCLR)
		}
		var pcfg ssl.PretrainConfig
		if method == "none" {
			cfg = cfg.WithClasses(c.Classes)
		} else {
			m, err := ssl.ParseMethod(method)
			if err != nil {
				return nil, fmt.Errorf("bench: --method %s: a ViT takes none or a pretraining method (%s)", method, ssl.MethodNames(", "))
			}
			pcfg = ssl.PretrainConfig{Method: m}.WithDefaults()
			if c.ProjHidden > 0 {
				pcfg.Projector.Hidden = c.ProjHidden
			}
			if c.ProjOut > 0 {
				pcfg.Projector.Out = c.ProjOut
				if pcfg.Predictor.Layers > 0 {
					pcfg.Predictor.Out = c.ProjOut
				}
			}
			if err := pcfg.Validate(); err != nil {
				return nil, fmt.Errorf("bench: --proj-hidden/--proj-out: %w", err)
			}
		}
		model, err := vit.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		s := &benchSetup{method: method}
		if pairs := pcfg.Method.Targets(); len(pairs) > 0 {
			s.ema = &fit.EMA{Base: ssl.DefaultMomentum, TotalSteps: int64(1 + c.Warmup + c.Steps)}
			for _, p := range pairs {
				s.ema.Pairs = append(s.ema.Pairs, fit.EMAPair{Online: "/" + p.Online, Target: "/" + p.Target})
			}
		}
		encoder := func(ctx *context.Context, x *graph.Node) backbone.Features { return model.Features(ctx, x) }
		s.loss = func(ctx *context.Context, in fit.Inputs) fit.Loss {
			if method == "none" {
				return fit.Classification(model.Features(ctx.In("encoder"), in.Images).Logits, in.Labels)
			}
			images := in.Images
			if n := pcfg.Method.Augmentations(); n > 1 {
				views := make([]*graph.Node, n)
				for i := range views {
					views[i] = images
				}
				images = graph.Stack(views, 1)
			}
			return fit.Loss{Total: ssl.PretrainLoss(ctx, encoder, pcfg, images, in.Labels).Loss}
		}
		return s, nil
	}

	student, err := cnn.Get(c.Model)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if method == "auto" {
		method = "none"
	}
	classes := c.Classes
	s := &benchSetup{method: method}
	if method == "none" {
		s.loss = func(ctx *context.Context, in fit.Inputs) fit.Loss {
			return fit.Classification(student.Build(ctx.In("student"), in.Images, classes).Logits, in.Labels)
		}
		return s, nil
	}
	if method != "kd" && method != "ifacd" {
		return nil, fmt.Errorf("bench: --method %s: a CNN takes none, kd or ifacd", method)
	}
	s.teacher = c.Teacher
	if s.teacher == "" {
		s.teacher = benchDefaultTeacher(c.Model)
		if s.teacher == "" {
			return nil, fmt.Errorf("bench: --method %s: no default teacher for %s, give --teacher", method, c.Model)
		}
	}
	teacher, err := cnn.Get(s.teacher)
	if err != nil {
		return nil, fmt.Errorf("bench: --teacher: %w", err)
	}
	if method == "ifacd" && c.IFACDLayers < 1 {
		return nil, fmt.Errorf("bench: --ifacd-layers %d: want >= 1", c.IFACDLayers)
	}
	// The distillation objective of `ifa distill` with γ = α = 1, T = 4 and this β.
	m, err := distill.Get(method)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	obj := distill.NewObjective(m, func(ctx *context.Context, images *graph.Node) backbone.Features {
		return student.Build(ctx, images, classes)
	}, func(ctx *context.Context, images *graph.Node) backbone.Features {
		return teacher.Build(ctx, images, classes)
	})
	obj.KDTemperature, obj.Beta = benchKDT, c.Beta
	s.frozen = []string{distill.TeacherScope}
	s.params = map[string]any{distill.ParamIFACDLayers: c.IFACDLayers}
	s.loss = obj.Loss
	return s, nil
}

// Check checks the numeric options, naming the flag at fault in a UsageError.
func (c *Bench) Check() error {
	return FirstFailed("bench",
		Want(c.Batch >= 1, "--batch %d: want >= 1", c.Batch),
		Want(c.Steps >= 1, "--steps %d: want >= 1", c.Steps),
		Want(c.Classes >= 1, "--classes %d: want >= 1", c.Classes),
		Want(c.Warmup >= 0, "--warmup %d: want >= 0", c.Warmup),
		Want(c.Patch >= 0, "--patch %d: want >= 0", c.Patch))
}

// Run compiles and times the training step on env.Backend, seeded with env.Seed.
func (c *Bench) Run(env Env) (res *BenchResult, err error) {
	backend, seed := env.Backend, env.Seed
	if err := c.Check(); err != nil {
		return nil, err
	}
	input, err := cnn.ParseMapShape(c.Input)
	if err != nil {
		return nil, fmt.Errorf("bench: --input: %w", err)
	}
	s, err := c.setup(input)
	if err != nil {
		return nil, err
	}
	defer catch.Recover(&err, fmt.Sprintf("bench: %s %s: ", c.Model, s.method))

	ctx := context.New()
	for k, v := range s.params {
		ctx.SetParam(k, v)
	}
	stepper, err := fit.NewStepper(fit.Job{Backend: backend, Context: ctx, Loss: s.loss}, fit.Config{
		Optimizer: fit.Optimizer{Kind: fit.OptimizerSGD, Momentum: benchMomentum, WeightDecay: benchWeightDecay, DecayBiasAndNorm: true},
		Frozen:    s.frozen, Seed: seed, EMA: s.ema,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer stepper.Finalize()

	// One fixed batch: standard-normal pixels, uniform labels.
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	pix := make([]float32, c.Batch*input.H*input.W*input.C)
	for i := range pix {
		pix[i] = float32(rng.NormFloat64())
	}
	labels := make([]int32, c.Batch)
	for i := range labels {
		labels[i] = int32(rng.IntN(c.Classes))
	}
	batch := data.Batch{Images: tensors.FromFlatDataAndDimensions(pix, c.Batch, input.H, input.W, input.C),
		Labels: tensors.FromFlatDataAndDimensions(labels, c.Batch), Size: c.Batch}

	var loss float64
	step := func() (time.Duration, error) {
		out, err := stepper.Step(benchLR, batch)
		loss = out.Loss
		return out.Duration, err
	}
	compile, err := step()
	if err != nil {
		return nil, fmt.Errorf("bench: %s %s: %w", c.Model, s.method, err)
	}
	var warm time.Duration
	for range c.Warmup {
		d, err := step()
		if err != nil {
			return nil, fmt.Errorf("bench: warm-up: %w", err)
		}
		warm += d
	}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if c.MemProfile != "" {
		runtime.MemProfileRate = 64 << 10
		// The profile's allocations up to here, to subtract (go tool pprof -base FILE.base FILE).
		runtime.GC()
		if err := writeAllocs(c.MemProfile + ".base"); err != nil {
			return nil, fmt.Errorf("bench: --memprofile: %w", err)
		}
		f, err := os.Create(c.MemProfile)
		if err != nil {
			return nil, fmt.Errorf("bench: --memprofile: %w", err)
		}
		defer f.Close()
		defer func() {
			runtime.GC()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintf(os.Stderr, "bench: --memprofile: %v\n", err)
			}
		}()
	}
	cpuBackend, _ := unwrapBackend(backend).(*cpu.Backend)
	if c.OpStats && cpuBackend != nil {
		cpuBackend.EnableOpStats(true)
		defer cpuBackend.EnableOpStats(false)
	}
	cpu0, faults0 := processUsage()
	gc0 := gcCount()
	times := make([]float64, c.Steps)
	for i := range times {
		d, err := step()
		if err != nil {
			return nil, fmt.Errorf("bench: step %d: %w", i+1, err)
		}
		times[i] = d.Seconds()
	}
	cpu1, faults1 := processUsage()
	cpuPerStep := (cpu1 - cpu0) / float64(c.Steps)
	if c.OpStats && cpuBackend != nil {
		fmt.Fprint(os.Stderr, cpuBackend.OpStatsReport(70))
		fmt.Fprintf(os.Stderr, "%.0f page faults/step, %.2f GCs/step\n",
			float64(faults1-faults0)/float64(c.Steps), float64(gcCount()-gc0)/float64(c.Steps))
	}
	med := median(times)
	var sum float64
	for _, t := range times {
		sum += t
	}
	backendCompile, _ := CompileSeconds(backend)
	var devPeak int64
	var devMeasure string
	if b, m := PeakMemory(backend); m == MeasureXLAExecutable {
		devPeak, devMeasure = b, m
	}
	return &BenchResult{
		Peer: "ifa", Model: c.Model, Method: s.method, Teacher: s.teacher, Batch: c.Batch,
		Input: input.String(), Backend: backend.Name(), Kernels: kernelPath(backend), Steps: c.Steps, Warmup: c.Warmup,
		TrainableParams: stepper.TrainableParams(), ImagesPerSec: float64(c.Batch) / med, StepSecondsMedian: med,
		StepSecondsMin: slices.Min(times), StepSecondsMean: sum / float64(len(times)),
		CompileSeconds: compile.Seconds(), BackendCompileSeconds: backendCompile, WarmupSeconds: warm.Seconds(),
		PeakMemoryBytes: fit.PeakRSS(), PeakMemoryMeasure: MeasureRSS, DevicePeakBytes: devPeak, DeviceMemoryMeasure: devMeasure, FinalLoss: loss, CPUSecondsPerStep: cpuPerStep,
	}, nil
}

// processUsage returns the CPU time (user + system, seconds) the process has used so far and its
// page faults (minor and major), or zeros where getrusage fails.
func processUsage() (cpuSeconds float64, faults int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), ru.Minflt + ru.Majflt
}

// writeAllocs writes the allocation profile so far to path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// gcCount is the number of garbage collections the process has completed so far.
func gcCount() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}

// median of xs (not empty); xs is left unchanged.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
