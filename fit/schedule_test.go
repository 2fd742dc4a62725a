package fit

import (
	"math"
	"testing"
)

func TestMultiStepSchedule(t *testing.T) {
	// RepDistiller / IFARD: lr·0.1^{#milestones < epoch}, epochs counted from 1.
	s := Schedule{Kind: ScheduleMultiStep, BaseLR: 0.05, Milestones: []int{150, 180, 210}, Factor: 0.1}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[int]float64{1: 0.05, 150: 0.05, 151: 0.005, 180: 0.005, 181: 0.0005, 210: 0.0005, 211: 0.00005, 240: 0.00005}
	for epoch1, want := range cases {
		// Also the spec's closed form: lr·0.1^{max(0, ⌈(e−150)/30⌉)} for e ≤ 240.
		closed := 0.05 * math.Pow(0.1, math.Max(0, math.Ceil(float64(epoch1-150)/30)))
		for _, step := range []int64{0, 12345} { // Per epoch: the step count does not matter.
			if got := s.LR(epoch1-1, step); !closeTo(got, want, 1e-12) || !closeTo(got, closed, 1e-12) {
				t.Errorf("epoch %d: lr %v, want %v (closed form %v)", epoch1, got, want, closed)
			}
		}
	}
}

func TestWarmupCosineSchedule(t *testing.T) {
	s := Schedule{Kind: ScheduleWarmupCosine, BaseLR: 3e-4, WarmupSteps: 1000, TotalSteps: 11000}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	ref := func(step int64) float64 { // LWCLR WarmupCosineSchedule, cycles 0.5.
		if step < 1000 {
			return 3e-4 * float64(step) / 1000
		}
		p := float64(step-1000) / 10000
		return 3e-4 * math.Max(0, 0.5*(1+math.Cos(math.Pi*p)))
	}
	// Within the run (the reference rises again past TotalSteps; ifa holds the floor there).
	for _, step := range []int64{0, 1, 500, 999, 1000, 1001, 6000, 10999, 11000} {
		if got, want := s.LR(0, step), ref(step); !closeTo(got, want, 1e-12) {
			t.Errorf("step %d: lr %v, want %v", step, got, want)
		}
	}
	if s.LR(0, 0) != 0 || s.LR(0, 1000) != 3e-4 || !closeTo(s.LR(0, 6000), 1.5e-4, 1e-12) {
		t.Errorf("landmarks: lr(0)=%v lr(1000)=%v lr(6000)=%v", s.LR(0, 0), s.LR(0, 1000), s.LR(0, 6000))
	}
	if s.LR(0, 11000) != 0 || s.LR(0, 20000) != 0 {
		t.Errorf("after the end: %v, %v; want 0", s.LR(0, 11000), s.LR(0, 20000))
	}
	// Floor: the cosine ends at FloorLR instead of 0.
	f := s
	f.FloorLR = 1e-5
	if got := f.LR(0, 11000); !closeTo(got, 1e-5, 1e-12) {
		t.Errorf("floor: lr at the end %v, want 1e-5", got)
	}
	if got, want := f.LR(0, 6000), 1e-5+(3e-4-1e-5)*0.5; !closeTo(got, want, 1e-12) {
		t.Errorf("floor: lr at mid-cosine %v, want %v", got, want)
	}
	// Warm-up then constant.
	w := Schedule{Kind: ScheduleWarmupConstant, BaseLR: 0.1, WarmupSteps: 10}
	for step, want := range map[int64]float64{0: 0, 5: 0.05, 9: 0.09, 10: 0.1, 1000: 0.1} {
		if got := w.LR(3, step); !closeTo(got, want, 1e-12) {
			t.Errorf("warmup_constant step %d: %v, want %v", step, got, want)
		}
	}
	c := Schedule{Kind: ScheduleConstant, BaseLR: 0.3}
	if c.LR(7, 99) != 0.3 {
		t.Errorf("constant: %v", c.LR(7, 99))
	}
}

func TestScheduleAndOptimizerValidation(t *testing.T) {
	bad := []Schedule{
		{Kind: "step", BaseLR: 0.1},
		{Kind: ScheduleMultiStep, BaseLR: 0.1, Milestones: []int{180, 150}, Factor: 0.1},
		{Kind: ScheduleMultiStep, BaseLR: 0.1, Factor: 0},
		{Kind: ScheduleWarmupCosine, BaseLR: 0.1, FloorLR: 0.2},
		{Kind: ScheduleConstant, BaseLR: math.NaN()},
	}
	for _, s := range bad {
		if s.Validate() == nil {
			t.Errorf("schedule %+v accepted", s)
		}
	}
	badOpt := []Optimizer{
		{Kind: "lars"},
		{Kind: OptimizerSGD, Nesterov: true},
		{Kind: OptimizerSGD, Momentum: 1},
		{Kind: OptimizerAdamW, Beta1: 1},
		{Kind: OptimizerSGD, WeightDecay: -1},
	}
	for _, o := range badOpt {
		if o.Validate() == nil {
			t.Errorf("optimizer %+v accepted", o)
		}
	}
}
