package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ifa-toolkit/ifa/ssl"
)

func TestParamsListsEveryGroup(t *testing.T) {
	var out bytes.Buffer
	c := &ParamsCmd{Format: "json", stdout: &out}
	if err := c.Run(nil); err != nil {
		t.Fatal(err)
	}
	var rows []paramRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("ifa params --format json: %v\n%s", err, out.String())
	}
	want := map[string]any{"ifacd_t": 0.07, "crd_k": 16384.0, "hint_layer": 2.0}
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.Key] {
			t.Errorf("key %q listed twice", r.Key)
		}
		seen[r.Key] = true
		if r.Doc == "" || r.Group == "" {
			t.Errorf("key %q: empty group or description", r.Key)
		}
		if w, ok := want[r.Key]; ok && r.Default != w {
			t.Errorf("key %q: default %v, want %v", r.Key, r.Default, w)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("key %q missing", k)
		}
	}
	// Every registered pretraining method is listed with its defaults.
	for _, m := range ssl.Methods() {
		if !seen[string(m)] {
			t.Errorf("pretraining method %s missing", m)
		}
	}
	for _, k := range []string{"kd_t", "ssl_temperature"} {
		if seen[k] {
			t.Errorf("key %q listed, but no command reads it", k)
		}
	}
}
