package fit

import (
	"fmt"
	"math"
)

// Schedule kinds.
const (
	// ScheduleConstant keeps the learning rate at BaseLR.
	ScheduleConstant = "constant"
	// ScheduleMultiStep multiplies BaseLR by Factor once for every milestone the (1-based) epoch
	// exceeds: lr(e) = BaseLR·Factor^#{m ∈ Milestones : e > m}. With milestones 150, 180, 210 and
	// factor 0.1 this is RepDistiller's (and IFARD's warmup_step) schedule: ×0.1 from epochs 151,
	// 181 and 211 on.
	ScheduleMultiStep = "multistep"
	// ScheduleWarmupCosine is counted per optimiser step s (0-based: the number of steps already
	// taken): lr = BaseLR·s/WarmupSteps for s < WarmupSteps, then
	// lr = FloorLR + (BaseLR − FloorLR)·½(1 + cos(π·p)) with p = (s − WarmupSteps)/max(1,
	// TotalSteps − WarmupSteps) clamped to [0, 1]. With FloorLR = 0 it is, up to TotalSteps, the
	// IFACLR/LWCLR WarmupCosineSchedule (cycles 0.5); past TotalSteps it stays at FloorLR.
	ScheduleWarmupCosine = "warmup_cosine"
	// ScheduleWarmupConstant is the linear warm-up of ScheduleWarmupCosine followed by BaseLR.
	ScheduleWarmupConstant = "warmup_constant"
)

// Schedule is a learning-rate schedule, computed on the host and fed to the train step as a
// scalar (changing it never recompiles the step).
type Schedule struct {
	// Kind is one of ScheduleConstant, ScheduleMultiStep, ScheduleWarmupCosine,
	// ScheduleWarmupConstant.
	Kind string `json:"kind"`
	// BaseLR is the peak (initial) learning rate.
	BaseLR float64 `json:"base_lr"`
	// Milestones (multistep): 1-based epochs after which the rate is multiplied by Factor.
	Milestones []int `json:"milestones,omitempty"`
	// Factor (multistep): the multiplier per milestone passed, e.g. 0.1.
	Factor float64 `json:"factor,omitempty"`
	// WarmupSteps (warmup_*): length of the linear warm-up from 0, in optimiser steps.
	WarmupSteps int64 `json:"warmup_steps,omitempty"`
	// TotalSteps (warmup_cosine): the step at which the cosine reaches FloorLR; 0 means the whole
	// run (Run fills it in from Epochs × StepsPerEpoch).
	TotalSteps int64 `json:"total_steps,omitempty"`
	// FloorLR (warmup_cosine): the rate the cosine ends at.
	FloorLR float64 `json:"floor_lr,omitempty"`
}

// Validate checks the schedule's fields for its kind.
func (s Schedule) Validate() error {
	if s.BaseLR < 0 || math.IsNaN(s.BaseLR) || math.IsInf(s.BaseLR, 0) {
		return fmt.Errorf("fit: schedule: base learning rate %v must be finite and >= 0", s.BaseLR)
	}
	switch s.Kind {
	case ScheduleConstant:
	case ScheduleMultiStep:
		if s.Factor <= 0 {
			return fmt.Errorf("fit: schedule %s: factor %v must be > 0", s.Kind, s.Factor)
		}
		for i, m := range s.Milestones {
			if m < 0 || (i > 0 && m <= s.Milestones[i-1]) {
				return fmt.Errorf("fit: schedule %s: milestones %v must be increasing and >= 0", s.Kind, s.Milestones)
			}
		}
	case ScheduleWarmupCosine, ScheduleWarmupConstant:
		if s.WarmupSteps < 0 || s.TotalSteps < 0 {
			return fmt.Errorf("fit: schedule %s: warmup_steps %d and total_steps %d must be >= 0",
				s.Kind, s.WarmupSteps, s.TotalSteps)
		}
		if s.FloorLR < 0 || s.FloorLR > s.BaseLR {
			return fmt.Errorf("fit: schedule %s: floor_lr %v must be in [0, base_lr %v]", s.Kind, s.FloorLR, s.BaseLR)
		}
	default:
		return fmt.Errorf("fit: unknown schedule kind %q (want %s, %s, %s or %s)", s.Kind,
			ScheduleConstant, ScheduleMultiStep, ScheduleWarmupCosine, ScheduleWarmupConstant)
	}
	return nil
}

// LR returns the learning rate of the optimiser step taken in 0-based epoch `epoch` when `step`
// steps have already been taken in the whole run.
func (s Schedule) LR(epoch int, step int64) float64 {
	switch s.Kind {
	case ScheduleMultiStep:
		lr := s.BaseLR
		for _, m := range s.Milestones {
			if epoch+1 > m {
				lr *= s.Factor
			}
		}
		return lr
	case ScheduleWarmupCosine, ScheduleWarmupConstant:
		if step < s.WarmupSteps {
			return s.BaseLR * float64(step) / float64(s.WarmupSteps)
		}
		if s.Kind == ScheduleWarmupConstant {
			return s.BaseLR
		}
		p := float64(step-s.WarmupSteps) / float64(max(1, s.TotalSteps-s.WarmupSteps))
		p = min(max(p, 0), 1)
		return s.FloorLR + (s.BaseLR-s.FloorLR)*0.5*(1+math.Cos(math.Pi*p))
	default:
		return s.BaseLR
	}
}
