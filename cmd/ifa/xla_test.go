package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestXLAMissingPluginIsOneLineWithHint(t *testing.T) {
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir())
	_, err := newXLABackend("no_such_device")
	if err == nil {
		t.Fatal("want an error for a plugin that is not installed")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "pip install") || !strings.Contains(msg, "no_such_device") {
		t.Errorf("error should be one line naming the plugin and how to install one, got %q", msg)
	}
}

func TestXLAPluginLookupInLibraryPath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pjrt_c_api_fake_plugin.so")
	if err := os.WriteFile(p, []byte("not a plugin"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", dir)
	got, err := findPJRTPlugin("fake")
	if err != nil || got != p {
		t.Fatalf("findPJRTPlugin(fake) = %q, %v; want %q", got, err, p)
	}
}

// The --backend flag must reach the plugin lookup: a missing plugin gives the install hint, not a
// refusal of the xla backend itself.
func TestNewBackendXLAReachesPluginLookup(t *testing.T) {
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir())
	app := &App{Globals: &Globals{Backend: "xla:no_such_device"}}
	_, err := app.NewBackend()
	if err == nil {
		t.Fatal("want an error for a plugin that is not installed")
	}
	if msg := err.Error(); !strings.Contains(msg, "pip install") || !strings.Contains(msg, "no_such_device") {
		t.Errorf("--backend xla:no_such_device: got %q, want the plugin lookup's install hint", msg)
	}
}
