package main

import (
	"bytes"
	stdctx "context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// fineGrainedFolder writes a small image folder (train/ and test/, 3 classes of 22x20 PNGs that
// differ only by the place of a small mark) and returns its root.
func fineGrainedFolder(t *testing.T, perClass int) string {
	t.Helper()
	root := t.TempDir()
	for _, split := range []string{"train", "test"} {
		for c := range 3 {
			dir := filepath.Join(root, split, fmt.Sprintf("class_%d", c))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range perClass {
				img := image.NewNRGBA(image.Rect(0, 0, 20, 22))
				for y := range 22 {
					for x := range 20 {
						v := uint8(90 + 30*((x/3+y/3+i)%2))
						img.Set(x, y, color.NRGBA{v, v, v - 20, 255})
					}
				}
				for y := 9; y < 12; y++ {
					for x := 3 + 5*c; x < 6+5*c; x++ {
						img.Set(x, y, color.NRGBA{220, 30, 30, 255})
					}
				}
				var b bytes.Buffer
				if err := png.Encode(&b, img); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d.png", i)), b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return root
}

// TestFolderRecipeTrainDistillTest trains resnet8 with --image-size 16 on a fine-grained folder
// (decoded at 18x18 once, cached), then ifa test and a distillation read the same recipe from the
// run's record; --image-size on a named dataset is refused.
func TestFolderRecipeTrainDistillTest(t *testing.T) {
	if !backendTrainsCNNs(t) {
		return
	}
	root := fineGrainedFolder(t, 4)
	teacher, res := trainTiny(t, root, "resnet8", "--dataset", root, "--image-size", "16")
	if d := res.Record.Data; d.Crop != 16 || d.Height != 16 || d.Width != 16 || d.Channels != 3 {
		t.Fatalf("record %+v, want a 16x16x3 crop", d)
	}
	if _, err := os.Stat(filepath.Join(root, ".ifa-cache", fmt.Sprintf("train-%dx%dx3.u8", data.FolderStoreSize(16), data.FolderStoreSize(16)))); err != nil {
		t.Errorf("no decoded cache: %v", err)
	}
	cli, app := parseCLI(t, "test", "--checkpoint", teacher)
	if err := cli.Test.Run(app); err != nil {
		t.Fatalf("ifa test on the folder recipe: %v", err)
	}
	runDir := filepath.Join(t.TempDir(), "distill")
	cli, app = parseCLI(t, "--out", runDir, "distill", "--teacher", teacher, "--student", "vit:nano", "--method", "kd",
		"--epochs", "1", "--batch", "4", "--eval-batch", "6")
	dres, err := cli.Distill.run(stdctx.Background(), app, testutil.Backend())
	if err != nil {
		t.Fatal(err)
	}
	if dres.Summary.TeacherTop1 == nil || dres.Result.GlobalStep != 3 {
		t.Errorf("distillation on the folder recipe: %+v", dres.Summary)
	}
	cli, app = parseCLI(t, "--out", filepath.Join(t.TempDir(), "x"), "train", "--model", "resnet8", "--dataset", "fashion-mnist",
		"--image-size", "16")
	if _, err := cli.Train.run(stdctx.Background(), app, testutil.Backend()); err == nil || !contains(err.Error(), "only for image folders") {
		t.Errorf("--image-size on fashion-mnist: err = %v", err)
	}
}

func contains(s, sub string) bool { return bytes.Contains([]byte(s), []byte(sub)) }
