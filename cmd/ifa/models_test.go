package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/runner"
	"github.com/ifa-toolkit/ifa/vit"
)

func TestModelsJSON(t *testing.T) {
	var buf bytes.Buffer
	cmd := &ModelsCmd{runner.Models{Format: "json", Classes: 100, Input: "32x32x3"}}
	if err := cmd.write(&buf, testutil.Backend()); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Name      string `json:"name"`
		Params    int    `json:"params"`
		TapWidths []int  `json:"tap_widths"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v in %s", err, buf.String())
	}
	names := cnn.Names()
	for _, n := range vit.Names() {
		names = append(names, "vit:"+n)
	}
	for _, n := range vit.MixerNames() {
		names = append(names, "mixer:"+n)
	}
	if len(got) != len(names) {
		t.Fatalf("%d models listed, registry has %d", len(got), len(names))
	}
	for i, m := range got {
		if m.Name != names[i] || m.Params <= 0 || len(m.TapWidths) == 0 {
			t.Errorf("entry %d: %+v", i, m)
		}
		if m.Name == "resnet8x4" && m.Params != 1_233_540 {
			t.Errorf("resnet8x4: %d params, want 1,233,540", m.Params)
		}
		if m.Name == "vit:nano" || m.Name == "mixer:nano" {
			rec, err := rundir.ModelNamed(m.Name, 100, rundir.DataSpec{Height: 32, Width: 32, Channels: 3}, "")
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if rec.ViT != nil {
				want = rec.ViT.ParamCount()
			} else {
				want = rec.Mixer.ParamCount()
			}
			if m.Params != want || len(m.TapWidths) != 4 {
				t.Errorf("%s: %d params (want the configuration's %d), %d taps (want 4)", m.Name, m.Params, want, len(m.TapWidths))
			}
		}
	}
}

func TestModelsTable(t *testing.T) {
	var buf bytes.Buffer
	cmd := &ModelsCmd{runner.Models{Format: "text", Classes: 10, Input: "28x28x1", Names: []string{"resnet20", "vgg8"}}}
	if err := cmd.write(&buf, testutil.Backend()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"NAME", "resnet20", "7x7x64 ×6", "vgg8", "7x7x256, 3x3x512 ×2"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []*ModelsCmd{
		{runner.Models{Format: "text", Input: "32x32"}},
		{runner.Models{Format: "text", Input: "32x32x3", Classes: -1}},
		{runner.Models{Format: "text", Input: "32x32x3", Names: []string{"resnet21"}}},
	} {
		if err := bad.write(&buf, testutil.Backend()); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
