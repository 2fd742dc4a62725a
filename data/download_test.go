package data

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// fileServer serves files by name; truncate[name] > 0 announces the full length but sends only that
// many bytes and drops the connection.
type fileServer struct {
	files    map[string][]byte
	truncate map[string]int
	hits     atomic.Int64
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	b, ok := s.files[strings.TrimPrefix(r.URL.Path, "/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if n := s.truncate[strings.TrimPrefix(r.URL.Path, "/")]; n > 0 {
		w.Write(b[:n])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	w.Write(b)
}

// noTemps fails if a temporary or partial file is left in dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || strings.HasSuffix(e.Name(), ".part") {
			t.Fatalf("left behind: %s", e.Name())
		}
	}
}

func TestFetchSource(t *testing.T) {
	a := []byte(strings.Repeat("first file ", 50000))
	b := []byte("second file")
	fs := &fileServer{files: map[string][]byte{"a.gz": a, "b.gz": b}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	src := Source{Name: "toy", Mirrors: []string{srv.URL + "/missing", srv.URL}, Files: []RemoteFile{{"a.gz", md5Hex(a)}, {"b.gz", md5Hex(b)}}}
	dir := filepath.Join(t.TempDir(), "toy")
	var calls int
	var lastDone, lastTotal int64
	res, err := FetchSource(context.Background(), src, dir, FetchOptions{Progress: func(file string, done, total int64) {
		calls++
		if file == "a.gz" {
			lastDone, lastTotal = done, total
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Skipped || res[0].Bytes != int64(len(a)) || !strings.HasPrefix(res[0].URL, srv.URL+"/a.gz") {
		t.Fatalf("results %+v", res)
	}
	if calls < 3 || lastDone != int64(len(a)) || lastTotal != int64(len(a)) {
		t.Fatalf("progress: %d calls, last %d/%d", calls, lastDone, lastTotal)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "a.gz"))
	if string(got) != string(a) {
		t.Fatal("file content differs")
	}
	if st, _ := os.Stat(filepath.Join(dir, "a.gz")); st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", st.Mode())
	}
	noTemps(t, dir)
	// Second run: verified files are not downloaded again.
	hits := fs.hits.Load()
	res, err = FetchSource(context.Background(), src, dir, FetchOptions{})
	if err != nil || !res[0].Skipped || !res[1].Skipped || fs.hits.Load() != hits {
		t.Fatalf("second run: %v %+v, %d requests", err, res, fs.hits.Load()-hits)
	}
	// A corrupted local file is replaced.
	os.WriteFile(filepath.Join(dir, "b.gz"), []byte("garbage"), 0o644)
	if _, err = FetchSource(context.Background(), src, dir, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "b.gz")); string(got) != string(b) {
		t.Fatal("corrupt local file not replaced")
	}
}

func TestFetchChecksumMismatch(t *testing.T) {
	fs := &fileServer{files: map[string][]byte{"a.gz": []byte("tampered")}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	dir := t.TempDir()
	// An older good copy stays untouched when the new download fails verification.
	os.WriteFile(filepath.Join(dir, "a.gz"), []byte("older"), 0o644)
	src := Source{Name: "toy", Mirrors: []string{srv.URL}, Files: []RemoteFile{{"a.gz", md5Hex([]byte("original"))}}}
	_, err := FetchSource(context.Background(), src, dir, FetchOptions{})
	if err == nil || !strings.Contains(err.Error(), "MD5 "+md5Hex([]byte("tampered"))+", want "+md5Hex([]byte("original"))) {
		t.Fatalf("got %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a.gz")); string(got) != "older" {
		t.Fatal("a failed download replaced the existing file")
	}
	noTemps(t, dir)
	// The real sources, pointed at the test server with BaseURL: the published MD5s reject it.
	fs.files["cifar-10-binary.tar.gz"] = []byte("not cifar")
	_, err = Fetch(context.Background(), "cifar-10", dir, FetchOptions{BaseURL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "want c32a1d4ab5d03f1284b67883e8d87530") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cifar-10-binary.tar.gz")); !os.IsNotExist(err) {
		t.Fatal("unverified file written")
	}
	noTemps(t, dir)
}

func TestFetchTruncatedTransfer(t *testing.T) {
	body := []byte(strings.Repeat("x", 100000))
	fs := &fileServer{files: map[string][]byte{"a.gz": body}, truncate: map[string]int{"a.gz": 4096}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	dir := t.TempDir()
	src := Source{Name: "toy", Mirrors: []string{srv.URL}, Files: []RemoteFile{{"a.gz", md5Hex(body)}}}
	_, err := FetchSource(context.Background(), src, dir, FetchOptions{})
	if err == nil || !strings.Contains(err.Error(), "truncated transfer") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.gz")); !os.IsNotExist(err) {
		t.Fatal("partial file left under the final name")
	}
	noTemps(t, dir)
	// HTTP errors and a cancelled context are errors too.
	src.Files[0].Name = "nothere.gz"
	if _, err := FetchSource(context.Background(), src, dir, FetchOptions{}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src.Files[0].Name = "a.gz"
	if _, err := FetchSource(ctx, src, dir, FetchOptions{}); err == nil {
		t.Fatal("cancelled context: no error")
	}
	noTemps(t, dir)
}

func TestSourcesKnown(t *testing.T) {
	for _, name := range Names() {
		src, err := SourceFor(name)
		if err != nil || len(src.Files) == 0 || len(src.Mirrors) == 0 {
			t.Fatalf("%s: %v", name, err)
		}
		for _, f := range src.Files {
			if b, err := hex.DecodeString(f.MD5); err != nil || len(b) != 16 {
				t.Fatalf("%s: %s: bad MD5 %q", name, f.Name, f.MD5)
			}
		}
	}
	if _, err := SourceFor("imagenet"); err == nil {
		t.Fatal("unknown dataset accepted")
	}
}

// A failed fetch removes the folders it created (and only those).
func TestFetchFailureLeavesNoFolder(t *testing.T) {
	srv := httptest.NewServer(&fileServer{files: map[string][]byte{}})
	defer srv.Close()
	root := t.TempDir()
	dir := filepath.Join(root, "new", "datasets", "toy")
	src := Source{Name: "toy", Mirrors: []string{srv.URL}, Files: []RemoteFile{{"a.gz", md5Hex([]byte("a"))}}}
	if _, err := FetchSource(context.Background(), src, dir, FetchOptions{}); err == nil {
		t.Fatal("fetching a missing file succeeded")
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("the failed fetch left %v in %s", entries, root)
	}
}
