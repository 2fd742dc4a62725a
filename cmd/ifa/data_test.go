package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ifa-toolkit/ifa/runner"
	"github.com/rs/zerolog"
)

func testApp() *App {
	return &App{Globals: &Globals{}, Log: zerolog.Nop()}
}

func writePNG(t *testing.T, path string, v uint8) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	img.Set(0, 0, color.Gray{Y: 255 - v})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDataInfoImageFolder(t *testing.T) {
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "train", "a", "1.png"), 10)
	writePNG(t, filepath.Join(root, "train", "b", "2.png"), 200)
	writePNG(t, filepath.Join(root, "train", "b", "3.png"), 100)
	writePNG(t, filepath.Join(root, "test", "a", "4.png"), 50)
	writePNG(t, filepath.Join(root, "test", "b", "5.png"), 60)
	var out bytes.Buffer
	cmd := &DataInfoCmd{runner.DataInfo{Name: root, Format: "json", Size: 4, Channels: 1}}
	if err := cmd.run(testApp(), &out); err != nil {
		t.Fatal(err)
	}
	var info runner.DatasetInfo
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	if info.Height != 4 || info.Channels != 1 || len(info.Classes) != 2 || len(info.Splits) != 2 ||
		info.Splits[0].Images != 3 || info.Splits[1].Images != 2 || info.Splits[0].ClassCounts[1] != 2 {
		t.Fatalf("info %+v", info)
	}
	// Mean of the test split: (15·50 + 205 + 15·60 + 195) / 32 / 255.
	if want := (15*50 + 205 + 15*60 + 195) / 32.0 / 255; abs(info.Splits[1].Mean[0]-want) > 1e-9 {
		t.Fatalf("test mean %v, want %v", info.Splits[1].Mean[0], want)
	}
	out.Reset()
	cmd.Format = "table"
	if err := cmd.run(testApp(), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "4x4x1") || !strings.Contains(out.String(), "train  3") {
		t.Fatalf("table:\n%s", out.String())
	}
}

func abs(x float64) float64 { return max(x, -x) }

func TestDataFetchRejectsBadChecksum(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not the real file"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	cmd := &DataFetchCmd{runner.Fetch{Name: "cifar100", DataDir: dir, BaseURL: srv.URL, Timeout: 10e9}}
	err := cmd.Run(testApp())
	if err == nil || !strings.Contains(err.Error(), "want 03b5dce01913d631647c71ecec9e9cb8") {
		t.Fatalf("got %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "cifar100"))
	if len(entries) != 0 {
		t.Fatalf("files left: %v", entries)
	}
}
