package runner

import (
	"errors"
	"testing"
)

// TestDistillErrorf: a wrapped error of the distill package loses its "distill: " prefix, others
// keep theirs; the result unwraps to the wrapped error and a UsageError stays one.
func TestDistillErrorf(t *testing.T) {
	inner := errors.New("distill: fsp: stage 0: channels differ")
	err := distillErrorf("%s → %s: %w", "resnet32x4", "shufflev2", inner)
	if got, want := err.Error(), "distill: resnet32x4 → shufflev2: fsp: stage 0: channels differ"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, inner) {
		t.Errorf("%v does not unwrap to the wrapped error", err)
	}
	if got, want := distillErrorf("%w", inner).Error(), "distill: fsp: stage 0: channels differ"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	other := errors.New("open x: no such file")
	if got, want := distillErrorf("--teacher: %w", other).Error(), "distill: --teacher: open x: no such file"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if u := (UsageError{distillErrorf("--recipe: %w", errors.New("distill: unknown recipe \"x\""))}); !IsUsage(u) ||
		u.Error() != `distill: --recipe: unknown recipe "x"` {
		t.Errorf("usage error %q", u.Error())
	}
}
