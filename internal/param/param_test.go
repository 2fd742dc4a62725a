package param

import (
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"
)

var table = Table{
	{Key: "n", Default: 3, Doc: "an int"},
	{Key: "x", Default: 0.5, Doc: "a float"},
	{Key: "on", Default: true, Doc: "a bool"},
	{Key: "mode", Default: "a", Doc: "a string"},
}

func TestParseAssignments(t *testing.T) {
	got, err := table.ParseAssignments([]string{"n=7", " x = 1e-3", "on=false", "mode=b=c", "n=8"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"n": 8, "x": 1e-3, "on": false, "mode": "b=c"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v (%T), want %v (%T)", k, got[k], got[k], w, w)
		}
	}
	for bad, msg := range map[string]string{"nokey=1": "unknown parameter (known: mode, n, on, x)", "n=1.5": "want a value of type int",
		"on=maybe": "type bool", "n": "want KEY=VALUE", "=1": "want KEY=VALUE"} {
		if _, err := table.ParseAssignments([]string{bad}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: err = %v, want it to say %q", bad, err, msg)
		}
	}
}

func TestGetReadsContextOrDefault(t *testing.T) {
	ctx := context.New()
	if Get[int](ctx, table, "n") != 3 || Get[string](ctx.In("sub"), table, "mode") != "a" {
		t.Error("defaults not read from the table")
	}
	ctx.SetParam("n", 9)
	if Get[int](ctx.In("sub"), table, "n") != 9 {
		t.Error("a context value set at the root is not seen from a sub-scope")
	}
	for _, f := range []func(){
		func() { Get[int](ctx, table, "missing") },
		func() { Get[float64](ctx, table, "n") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic on a key outside the table or of another type")
				}
			}()
			f()
		}()
	}
}

func TestVarsAndCheck(t *testing.T) {
	v := table.Vars()
	if v["x"] != "0.5" || v["on"] != "true" || v["n_doc"] != "an int" {
		t.Errorf("vars %v", v)
	}
	if err := table.Check(); err != nil {
		t.Error(err)
	}
	for _, bad := range []Table{
		append(table, Param{Key: "n", Default: 1, Doc: "twice"}),
		{{Key: "f", Default: float32(1), Doc: "float32"}},
		{{Key: "d", Default: 1}},
	} {
		if bad.Check() == nil {
			t.Errorf("Check accepted %v", bad)
		}
	}
}
