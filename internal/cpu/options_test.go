package cpu

import (
	"strings"
	"testing"
)

// TestParseConfig checks the backend options: defaults, each switch both ways, and one clear
// message for a bad option or value.
func TestParseConfig(t *testing.T) {
	o, err := parseConfig("")
	if err != nil || o != defaultOptions() {
		t.Fatalf(`parseConfig("") = %+v, %v; want the defaults %+v`, o, err, defaultOptions())
	}
	if !o.directConv || o.winograd != winoAuto || !o.fusion || o.opStats {
		t.Fatalf("defaults %+v: want direct conv, Winograd and fusion on, op stats off", o)
	}
	o, err = parseConfig("winograd=off, directconv=false,fusion=0,opstats=on")
	if err != nil {
		t.Fatal(err)
	}
	if o.winograd != winoOff || o.directConv || o.fusion || !o.opStats {
		t.Fatalf("switched options %+v: want Winograd, direct conv and fusion off, op stats on", o)
	}
	o, err = parseConfig("winograd=off,winograd=ON")
	if err != nil || o.winograd != winoAuto {
		t.Fatalf("the last setting wins: got %+v, %v", o, err)
	}
	for cfg, want := range map[string]winoMode{"winograd=f2": winoF2, "winograd=F4": winoF4, "winograd=0": winoOff} {
		if o, err := parseConfig(cfg); err != nil || o.winograd != want {
			t.Errorf("parseConfig(%q) = %+v, %v; want Winograd mode %d", cfg, o, err, want)
		}
	}
	for cfg, want := range map[string]string{
		"winograd=maybe": `winograd="maybe": want on, off, f2 or f4`,
		"fusion":         `fusion="": want on or off`,
		"speed=max":      `unknown option "speed=max"`,
		"workers=0":      `workers="0": want an integer >= 1`,
		"isa=sse":        "isa",
	} {
		_, err := parseConfig(cfg)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), cfg) {
			t.Errorf("parseConfig(%q) = %v; want an error naming the config and %q", cfg, err, want)
		}
	}
	if _, err := New("fusion=sometimes"); err == nil {
		t.Error(`New("fusion=sometimes") succeeded; want an error`)
	}
}
