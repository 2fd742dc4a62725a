package runner

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestDefaults fills every kind of field the options use from their tags, resolves help
// variables, keeps untagged fields and refuses what it cannot fill.
func TestDefaults(t *testing.T) {
	type inner struct {
		N int `default:"3"`
	}
	type opts struct {
		inner
		S      string        `default:"a"`
		B      bool          `default:"true"`
		F      float64       `default:"${x}"`
		I64    int64         `default:"-7"`
		D      time.Duration `default:"1h"`
		Ints   []int         `default:"150,180"`
		Strs   []string      `default:""`
		Kept   string
		hidden int `default:"9"`
	}
	o := opts{Kept: "k"}
	if err := Defaults(&o, map[string]string{"x": "0.25"}); err != nil {
		t.Fatal(err)
	}
	if o.N != 3 || o.S != "a" || !o.B || o.F != 0.25 || o.I64 != -7 || o.D != time.Hour || len(o.Ints) != 2 ||
		o.Ints[1] != 180 || len(o.Strs) != 0 || o.Kept != "k" || o.hidden != 0 {
		t.Errorf("Defaults gave %+v", o)
	}
	if err := Defaults(o, nil); err == nil {
		t.Error("a struct value (not a pointer): no error")
	}
	bad := struct {
		N int `default:"x"`
	}{}
	if err := Defaults(&bad, nil); err == nil || !strings.Contains(err.Error(), "field N") {
		t.Errorf("an unparsable default: %v", err)
	}
	// Every job of the package takes its defaults.
	for _, o := range []any{&PretrainViT{}, &Train{}, &Distill{}, &Bench{}, &EvalInput{}, &Import{}, &Export{},
		&Test{}, &Models{}, &Fetch{}, &DataInfo{}} {
		if err := Defaults(o, nil); err != nil {
			t.Errorf("%T: %v", o, err)
		}
	}
}

// TestUsageError: Usagef wraps with %w and IsUsage finds it through further wrapping.
func TestUsageError(t *testing.T) {
	base := errors.New("inner")
	err := Usagef("--x 1: %w", base)
	if !IsUsage(err) || !IsUsage(errors.Join(errors.New("outer"), err)) || !errors.Is(err, base) || err.Error() != "--x 1: inner" {
		t.Errorf("Usagef: %v", err)
	}
	if IsUsage(base) {
		t.Error("a plain error is a usage error")
	}
	if err := FirstFailed("cmd", Want(true, "ok"), Want(false, "--y %d: want >= 0", -1)); err == nil || err.Error() != "cmd: --y -1: want >= 0" || !IsUsage(err) {
		t.Errorf("FirstFailed: %v", err)
	}
}
