package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entries returns the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.json")
	for _, content := range []string{"first\n", "second, longer\n", ""} {
		if err := WriteFile(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	if names := entries(t, dir); len(names) != 1 || names[0] != "out.json" {
		t.Fatalf("folder holds %v, want only out.json", names)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o644 {
		t.Errorf("permissions %v, want 0644", perm)
	}
}

func TestWriteFileMissingFolderNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-folder", "x.bin")
	err := WriteFile(path, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, want one naming %s", err, path)
	}
}

// A commit whose rename fails (the destination is a folder that is not empty) keeps the
// destination and removes the temporary file.
func TestCommitFailureKeepsDestination(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "dst")
	if err := os.MkdirAll(filepath.Join(dst, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(dst, []byte("new"))
	if err == nil || !strings.Contains(err.Error(), dst) {
		t.Fatalf("error %v, want one naming %s", err, dst)
	}
	if st, err := os.Stat(filepath.Join(dst, "inside")); err != nil || !st.IsDir() {
		t.Fatalf("destination folder changed: %v", err)
	}
	if names := entries(t, dir); len(names) != 1 || names[0] != "dst" {
		t.Fatalf("folder holds %v, want only dst", names)
	}
}

func TestAbortAndCommitOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.bin")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(f.Name()), TempPrefix+"model.bin-") || f.Path() != path {
		t.Fatalf("temporary file %s for %s", f.Name(), f.Path())
	}
	if _, err := f.WriteString("half"); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	f.Abort() // a second abort is a no-op
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Fatalf("destination %q after abort, want old", got)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Fatalf("folder holds %v after abort", names)
	}
	if err := f.Commit(0o644); err == nil {
		t.Fatal("commit after abort succeeded")
	}

	f, err = Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort() // after the commit: must not remove the destination
	if _, err := f.WriteString("new"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(0o600); err == nil {
		t.Fatal("second commit succeeded")
	}
	f.Abort()
	if got, _ := os.ReadFile(path); string(got) != "new" {
		t.Fatalf("destination %q, want new", got)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("permissions %v, want 0600", st.Mode().Perm())
	}
}

func TestSyncDirMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	if err := SyncDir(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %v, want one naming %s", err, dir)
	}
}
