package fit

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/catch"
	"github.com/ifa-toolkit/ifa/internal/nn"
)

// absScope normalises a scope to an absolute path without a trailing separator ("" → "/").
func absScope(s string) string {
	s = strings.TrimSuffix(s, context.ScopeSeparator)
	if !strings.HasPrefix(s, context.ScopeSeparator) {
		s = context.ScopeSeparator + s
	}
	return s
}

// isLoopStateVariable reports whether a saved variable belongs to the training loop rather than
// the model: optimiser state and the context's RNG state.
func isLoopStateVariable(scope, name string) bool {
	return inScope(scope, OptimizerScope) || (scope == context.RootScope && name == context.RNGStateVariableName)
}

// LoadOptions selects which variables of a checkpoint LoadVariables loads and where they go.
type LoadOptions struct {
	// From keeps only the variables at or below this absolute scope ("" keeps all) and strips it
	// from their scope: with From "/student", "/student/conv1/weights" loads as "/conv1/weights"
	// (before To is applied).
	From string
	// To re-roots the loaded variables under this absolute scope ("" is the root): with To
	// "/teacher", "/conv1/weights" loads as "/teacher/conv1/weights".
	To string
	// Frozen marks every loaded variable non-trainable.
	Frozen bool
	// IncludeLoopState also loads the optimiser state and the RNG state (what resuming needs); by
	// default only model variables are loaded.
	IncludeLoopState bool
}

// LoadVariables loads variables of the checkpoint at path (a checkpoint file, or a run directory
// for its newest checkpoint) into ctx and returns how many it loaded. A variable that already
// exists in ctx must have the same shape and dtype; it keeps its trainable flag unless
// opts.Frozen. A new one is created with the checkpoint's flag (false if opts.Frozen). Graph code
// that later declares these variables must run on a context that allows reuse (ctx.Reuse() or
// ctx.Checked(false)).
func LoadVariables(ctx *context.Context, path string, opts LoadOptions) (int, error) {
	file, err := ResolveCheckpoint(path)
	if err != nil {
		return 0, err
	}
	ck, err := LoadCheckpoint(file)
	if err != nil {
		return 0, err
	}
	n, err := ck.Apply(ctx, opts)
	if err == nil && n == 0 {
		err = fmt.Errorf("fit: checkpoint %s has no variables under %q", file, absScope(opts.From))
	}
	return n, err
}

// Apply sets ctx's variables from the checkpoint as LoadVariables describes.
func (ck *Checkpoint) Apply(ctx *context.Context, opts LoadOptions) (n int, err error) {
	from, to := absScope(opts.From), absScope(opts.To)
	// GoMLX reports misuse by panicking; report it with the file's name.
	defer catch.Recover(&err, fmt.Sprintf("fit: checkpoint %s: loading variables: ", ck.Path))
	for _, sv := range ck.Variables {
		if !opts.IncludeLoopState && isLoopStateVariable(sv.Scope, sv.Name) {
			continue
		}
		if !inScope(sv.Scope, from) {
			continue
		}
		rel := strings.TrimPrefix(sv.Scope, from)
		if from == context.RootScope {
			rel = sv.Scope
		}
		scope := to
		if rel != "" && rel != context.RootScope {
			if to == context.RootScope {
				scope = rel
			} else {
				scope = to + rel
			}
		}
		if existing := ctx.GetVariableByScopeAndName(scope, sv.Name); existing != nil {
			if !existing.Shape().Equal(sv.Value.Shape()) {
				return n, fmt.Errorf("fit: checkpoint %s: variable %s has shape %s, but %s in the model has shape %s",
					ck.Path, sv.ScopeAndName(), sv.Value.Shape(), existing.ScopeAndName(), existing.Shape())
			}
			if err := existing.SetValue(sv.Value); err != nil {
				return n, fmt.Errorf("fit: checkpoint %s: variable %s: %w", ck.Path, sv.ScopeAndName(), err)
			}
			if opts.Frozen {
				existing.SetTrainable(false)
			}
		} else {
			ctx.InAbsPath(scope).Checked(false).VariableWithValue(sv.Name, sv.Value).SetTrainable(sv.Trainable && !opts.Frozen)
		}
		n++
	}
	return n, nil
}

// ImportFrozen loads the model variables of another run's checkpoint (a file, or a run directory
// for its newest checkpoint) under scope — e.g. a teacher under "/teacher" — marks them
// non-trainable and sets nn.FrozenParam in that scope, so its batch norms run in evaluation mode
// and the optimiser neither updates them nor keeps state for them. from is the model's scope in
// the checkpoint ("" takes every variable), stripped before re-rooting under scope. Optimiser and
// RNG state of the source run are not imported.
func ImportFrozen(ctx *context.Context, scope, path, from string) error {
	scope = absScope(scope)
	if scope == context.RootScope {
		return fmt.Errorf("fit: importing %s: a frozen model needs its own scope, not the root", path)
	}
	if _, err := LoadVariables(ctx, path, LoadOptions{From: from, To: scope, Frozen: true}); err != nil {
		return err
	}
	ctx.InAbsPath(scope).SetParam(nn.FrozenParam, true)
	return nil
}

// CountParams returns the number of trainable parameters (elements of trainable float variables)
// at or below scope ("" or "/" counts all), excluding non-trainable variables (frozen models,
// batch-norm statistics) and optimiser state. Variables exist once the model's graph has been
// built.
func CountParams(ctx *context.Context, scope string) int64 {
	scope = absScope(scope)
	return nn.CountTrainable(ctx, func(v *context.Variable) bool {
		return inScope(v.Scope(), scope) && !inScope(v.Scope(), OptimizerScope)
	})
}
