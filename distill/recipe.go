package distill

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ifa-toolkit/ifa/fit"
)

// Recipe is an optimisation recipe of distillation runs: SGD with momentum, the base learning
// rate, which parameters are weight-decayed and whether the last incomplete batch is dropped.
type Recipe struct {
	// Nesterov momentum instead of plain momentum.
	Nesterov bool
	// DecayBiasAndNorm applies weight decay to biases and batch-norm parameters too.
	DecayBiasAndNorm bool
	// DropLast drops the last incomplete batch of an epoch.
	DropLast bool
	// LR is the base learning rate; LightLR the one of lightweight students (cnn.Family.Lightweight:
	// MobileNetV2, ShuffleNetV1/V2).
	LR, LightLR float64
}

// Recipes are the built-in recipes by name: ifard (IFARD's, METHODS.md §2.5: Nesterov, no weight
// decay on biases and batch norm, the last batch dropped) and repdistiller (RepDistiller's, §4.3:
// plain momentum, weight decay on every parameter, the last batch kept); both lr 0.05, 0.01 for
// MobileNetV2 students.
var Recipes = map[string]Recipe{
	"ifard":        {Nesterov: true, DropLast: true, LR: 0.05, LightLR: 0.01},
	"repdistiller": {DecayBiasAndNorm: true, LR: 0.05, LightLR: 0.01},
}

// GetRecipe returns the recipe named name.
func GetRecipe(name string) (Recipe, error) {
	r, ok := Recipes[name]
	if !ok {
		names := make([]string, 0, len(Recipes))
		for n := range Recipes {
			names = append(names, n)
		}
		slices.Sort(names)
		return r, fmt.Errorf("distill: unknown recipe %q (known: %s)", name, strings.Join(names, ", "))
	}
	return r, nil
}

// AdamWLR is the base learning rate of a recipe run with AdamW instead of its SGD (PyTorch's Adam
// default): the recipes' SGD rates are far too large for Adam's normalised steps.
const AdamWLR = 1e-3

// BaseLR returns lr when it is > 0, else the recipe's rate (LightLR for a lightweight student).
func (r Recipe) BaseLR(lr float64, light bool) float64 {
	switch {
	case lr > 0:
		return lr
	case light:
		return r.LightLR
	}
	return r.LR
}

// Optimizer returns the recipe's SGD with this momentum and weight decay.
func (r Recipe) Optimizer(momentum, weightDecay float64) fit.Optimizer {
	return fit.Optimizer{Kind: fit.OptimizerSGD, Momentum: momentum, WeightDecay: weightDecay,
		Nesterov: r.Nesterov, DecayBiasAndNorm: r.DecayBiasAndNorm}
}

// AdamW returns AdamW (decoupled weight decay) in place of the recipe's SGD, with the recipe's
// weight-decay exclusions; momentum and Nesterov do not apply.
func (r Recipe) AdamW(weightDecay float64) fit.Optimizer {
	return fit.Optimizer{Kind: fit.OptimizerAdamW, WeightDecay: weightDecay, DecayBiasAndNorm: r.DecayBiasAndNorm}
}
