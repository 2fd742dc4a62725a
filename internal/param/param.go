// Package param holds the shape of a method package's parameter table: the tunables a method reads
// from the GoMLX context, each declared once with its key, default and description. The table
// drives `ifa params`, the validation of `--param KEY=VALUE`, the defaults shown in --help and
// the values a run records; the code reads a tunable through Get, whose default comes from the
// table.
package param

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Param is one tunable: its context key, its default (an int, float64, bool or string: the type
// a value given as text is parsed to) and a one-line description.
type Param struct {
	Key     string
	Default any
	Doc     string
}

// Table is a list of tunables with distinct keys.
type Table []Param

// Lookup returns the tunable of key.
func (t Table) Lookup(key string) (Param, bool) {
	for _, p := range t {
		if p.Key == key {
			return p, true
		}
	}
	return Param{}, false
}

// Keys returns the keys, sorted.
func (t Table) Keys() []string {
	out := make([]string, len(t))
	for i, p := range t {
		out[i] = p.Key
	}
	slices.Sort(out)
	return out
}

// Get reads key from ctx (searched from ctx's scope up to the root) with the table's default.
// A key missing from the table, or a default of another type than T, is a programming error: it
// panics.
func Get[T any](ctx *context.Context, t Table, key string) T {
	p, ok := t.Lookup(key)
	if !ok {
		panic(fmt.Errorf("param: %q is not in the parameter table", key))
	}
	def, ok := p.Default.(T)
	if !ok {
		panic(fmt.Errorf("param: %q has a default of type %T, read as %T", key, p.Default, def))
	}
	return context.GetParamOr(ctx, key, def)
}

// Parse converts the text value s of key to the type of the key's default.
func (t Table) Parse(key, s string) (any, error) {
	p, ok := t.Lookup(key)
	if !ok {
		return nil, fmt.Errorf("%s: unknown parameter (known: %s)", key, strings.Join(t.Keys(), ", "))
	}
	s = strings.TrimSpace(s)
	var v any
	var err error
	switch p.Default.(type) {
	case int:
		v, err = strconv.Atoi(s)
	case float64:
		v, err = strconv.ParseFloat(s, 64)
	case bool:
		v, err = strconv.ParseBool(s)
	case string:
		v = s
	default:
		return nil, fmt.Errorf("%s: parameter of unsupported type %T", key, p.Default)
	}
	if err != nil {
		return nil, fmt.Errorf("%s=%s: want a value of type %T like the default %v", key, s, p.Default, p.Default)
	}
	return v, nil
}

// ParseAssignments parses KEY=VALUE strings (a --param or --set flag's values) into a map, each
// value of its default's type; later assignments of a key win.
func (t Table) ParseAssignments(kvs []string) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range kvs {
		key, val, ok := strings.Cut(kv, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, fmt.Errorf("%q: want KEY=VALUE", kv)
		}
		v, err := t.Parse(key, val)
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
	return out, nil
}

// Vars returns, for each tunable, the text of its default under its key, and its description
// under the key with the suffix "_doc": variables for help texts and flag defaults (kong.Vars).
func (t Table) Vars() map[string]string {
	out := make(map[string]string, 2*len(t))
	for _, p := range t {
		out[p.Key] = fmt.Sprint(p.Default)
		out[p.Key+"_doc"] = p.Doc
	}
	return out
}

// Check reports a key declared twice, an empty key or description, or a default of an unsupported
// type.
func (t Table) Check() error {
	seen := map[string]bool{}
	for _, p := range t {
		switch p.Default.(type) {
		case int, float64, bool, string:
		default:
			return fmt.Errorf("param: %q: default of unsupported type %T", p.Key, p.Default)
		}
		if p.Key == "" || p.Doc == "" {
			return fmt.Errorf("param: %q: empty key or description", p.Key)
		}
		if seen[p.Key] {
			return fmt.Errorf("param: %q declared twice", p.Key)
		}
		seen[p.Key] = true
	}
	return nil
}
