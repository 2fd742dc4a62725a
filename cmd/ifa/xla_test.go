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
