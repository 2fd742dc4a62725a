package layering

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ifa-toolkit/ifa/"

// allowed lists, for each library package, the ifa packages its non-test code may import
// (docs/ARCHITECTURE.md, "Packages"). cmd/... may import anything.
var allowed = map[string][]string{
	"backbone":             nil,
	"internal/atomicfile":  nil,
	"data":                 {"internal/catch", "internal/atomicfile"},
	"report":               {"internal/atomicfile"},
	"torchio":              {"internal/atomicfile"},
	"internal/param":       nil,
	"internal/nn":          nil,
	"internal/cpu/kernels": nil,
	"internal/layering":    nil,
	"internal/catch":       nil,
	"internal/cpu":         {"internal/cpu/kernels"},
	"internal/testutil":    {"internal/cpu"},
	"cnn":                  {"backbone", "internal/nn", "internal/catch"},
	"vit":                  {"backbone", "internal/nn"},
	"ssl":                  {"backbone", "internal/nn", "internal/param"},
	"fit":                  {"data", "internal/nn", "internal/catch", "internal/atomicfile"},
	"eval":                 {"data", "fit", "backbone", "internal/nn"},
	"distill":              {"backbone", "data", "fit", "internal/nn", "internal/param", "ssl", "internal/catch"},
	"rundir":               {"backbone", "cnn", "vit", "data", "fit", "internal/nn", "internal/catch"},
	"interop":              {"backbone", "cnn", "vit", "fit", "torchio", "internal/catch"},
	"runner": {"backbone", "cnn", "vit", "data", "fit", "eval", "ssl", "distill", "rundir", "interop",
		"report", "torchio", "internal/nn", "internal/param", "internal/catch", "internal/cpu", "internal/atomicfile"},
}

type pkg struct {
	ImportPath string
	Imports    []string
}

// listPackages runs go list over the module.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	cmd := exec.Command("go", "list", "-json", module+"...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// forbidden returns the ifa imports of package path (relative to the module) that the rules
// forbid, with the reason.
func forbidden(path string, imports []string) []string {
	var bad []string
	isCmd := path == "cmd" || strings.HasPrefix(path, "cmd/")
	allow, known := allowed[path]
	for _, imp := range imports {
		rel, ok := strings.CutPrefix(imp, module)
		if !ok {
			continue
		}
		switch {
		case rel == "cmd" || strings.HasPrefix(rel, "cmd/"):
			bad = append(bad, rel+" (nothing imports a command)")
		case rel == "internal/testutil":
			bad = append(bad, rel+" (only tests import internal/testutil)")
		case rel == "runner" && !isCmd:
			bad = append(bad, rel+" (only commands import runner: it is the top of the library)")
		case isCmd:
		case !known:
			// A package missing from the table gets the general rules only.
		case !slices.Contains(allow, rel):
			bad = append(bad, rel+" (not in its allowed imports: "+strings.Join(allow, ", ")+")")
		}
	}
	return bad
}

func TestLayering(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < len(allowed) {
		t.Fatalf("go list found %d packages, fewer than the %d the rules name", len(pkgs), len(allowed))
	}
	for _, p := range pkgs {
		path := strings.TrimPrefix(p.ImportPath, module)
		for _, b := range forbidden(path, p.Imports) {
			t.Errorf("%s imports %s: see docs/ARCHITECTURE.md", path, b)
		}
		if _, ok := allowed[path]; !ok && path != "cmd/ifa" {
			t.Logf("%s is not in the layering table: add it to internal/layering and docs/ARCHITECTURE.md", path)
		}
	}
}

// TestForbiddenImportsAreCaught checks the rules on made-up import lists.
func TestForbiddenImportsAreCaught(t *testing.T) {
	for _, tc := range []struct {
		path    string
		imports []string
		bad     int
	}{
		{"distill", []string{module + "cnn"}, 1},
		{"distill", []string{module + "ssl", module + "fit", "fmt"}, 0},
		{"fit", []string{module + "distill", module + "cmd/ifa"}, 2},
		{"newpkg", []string{module + "internal/testutil"}, 1},
		{"newpkg", []string{module + "cnn"}, 0},
		{"cmd/ifa", []string{module + "internal/testutil", module + "distill"}, 1},
		{"backbone", []string{module + "internal/nn"}, 1},
		{"distill", []string{module + "runner"}, 1},
		{"cmd/ifa", []string{module + "runner"}, 0},
	} {
		if got := forbidden(tc.path, tc.imports); len(got) != tc.bad {
			t.Errorf("%s importing %v: forbidden %v, want %d", tc.path, tc.imports, got, tc.bad)
		}
	}
}
