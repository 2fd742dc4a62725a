// Package atomicfile writes files so that a reader sees either the old file or the complete new
// one, never part of one: the data goes to a temporary file in the destination's folder
// (".tmp-<name>-<random>"), which is synced, closed and renamed over the destination, and the
// folder is synced so that the rename survives a crash. A write that fails or is abandoned
// removes its temporary file and leaves the destination as it was.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// TempPrefix starts the name of every temporary file; such a file left behind by a killed process
// is an unfinished write that may be deleted.
const TempPrefix = ".tmp-"

// File is a write in progress: an *os.File open on the temporary file. Commit makes it the
// destination; Abort (safe to defer, a no-op after Commit) removes it.
type File struct {
	*os.File
	path string
	done bool
}

// Create starts an atomic write of path. Errors name path.
func Create(path string) (*File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &File{File: tmp, path: path}, nil
}

// Path returns the destination.
func (f *File) Path() string { return f.path }

// Commit syncs and closes the temporary file, sets its permission bits to perm (os.CreateTemp
// creates it with 0o600), renames it over the destination and syncs the folder. On an error the
// temporary file is removed and the destination is unchanged (unless only the folder sync failed).
func (f *File) Commit(perm os.FileMode) error {
	if f.done {
		return fmt.Errorf("%s: already committed or aborted", f.path)
	}
	f.done = true
	err := f.Chmod(perm)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), f.path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("%s: %w", f.path, err)
	}
	return SyncDir(filepath.Dir(f.path))
}

// Abort closes and removes the temporary file, unless Commit or Abort already ran.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	_ = f.Close()
	_ = os.Remove(f.Name())
}

// WriteFile writes data to path atomically with permission bits 0o644. Errors name path.
func WriteFile(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Commit(0o644)
}

// SyncDir syncs folder dir, making the renames and removals in it durable. Errors name dir.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}
