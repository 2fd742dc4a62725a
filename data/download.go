package data

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ifa-toolkit/ifa/internal/atomicfile"
)

// RemoteFile is one published file of a dataset and its published MD5 checksum (hex).
type RemoteFile struct {
	Name string
	MD5  string
}

// Source is where a dataset is published: each file is fetched from mirror + "/" + name, trying the
// mirrors in order.
type Source struct {
	Name    string
	Mirrors []string
	Files   []RemoteFile
}

// SourceFor returns the published files of a known dataset (cifar10, cifar100, fashion-mnist, mnist)
// with their checksums: the MD5s published by the CIFAR page and Fashion-MNIST's README; for MNIST,
// those of the files served by the mirrors listed (the original site no longer serves them).
func SourceFor(name string) (Source, error) {
	switch CanonicalName(name) {
	case CIFAR10:
		return Source{Name: CIFAR10, Mirrors: []string{"https://www.cs.toronto.edu/~kriz"},
			Files: []RemoteFile{{"cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"}}}, nil
	case CIFAR100:
		return Source{Name: CIFAR100, Mirrors: []string{"https://www.cs.toronto.edu/~kriz"},
			Files: []RemoteFile{{"cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8"}}}, nil
	case FashionMNIST:
		return Source{Name: FashionMNIST, Mirrors: []string{
			"https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
			"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
		}, Files: []RemoteFile{
			{"train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"},
			{"train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"},
			{"t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"},
			{"t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"},
		}}, nil
	case MNIST:
		return Source{Name: MNIST, Mirrors: []string{
			"https://ossci-datasets.s3.amazonaws.com/mnist",
			"https://storage.googleapis.com/cvdf-datasets/mnist",
		}, Files: []RemoteFile{
			{"train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
			{"train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"},
			{"t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"},
			{"t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"},
		}}, nil
	}
	return Source{}, fmt.Errorf("data: fetch: unknown dataset %q: want one of %s", name, strings.Join(Names(), ", "))
}

// FetchOptions tune Fetch.
type FetchOptions struct {
	// BaseURL, when set, replaces the source's mirrors: files are fetched from BaseURL + "/" + name.
	BaseURL string
	// Client is the HTTP client (default http.DefaultClient).
	Client *http.Client
	// Progress, when set, is called as a file downloads: done bytes of total (−1 when unknown);
	// first with done = 0.
	Progress func(file string, done, total int64)
}

// FetchResult says what Fetch did with one file.
type FetchResult struct {
	// Path is the verified file's path.
	Path string
	// Skipped: the file was already there with the right checksum.
	Skipped bool
	// Bytes downloaded.
	Bytes int64
	// URL it came from ("" when skipped).
	URL string
}

// Fetch downloads a known dataset's files into dir (created if needed) and verifies their MD5s. See
// FetchSource.
func Fetch(ctx context.Context, name, dir string, opts FetchOptions) ([]FetchResult, error) {
	src, err := SourceFor(name)
	if err != nil {
		return nil, err
	}
	return FetchSource(ctx, src, dir, opts)
}

// FetchSource downloads src's files into dir and verifies their MD5s. A file already there with the
// right checksum is not downloaded again. Each file is written to a temporary file in dir, synced and
// renamed into place only once verified, so no partial or corrupt file is ever left under its name.
// A failed fetch removes the folders it created while they are empty (files already verified stay,
// so that a second try does not download them again).
func FetchSource(ctx context.Context, src Source, dir string, opts FetchOptions) (results []FetchResult, err error) {
	created := missingDirs(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data: fetch %s: %w", src.Name, err)
	}
	defer func() {
		if err != nil {
			for _, d := range created { // deepest first; os.Remove leaves a folder that is not empty
				if os.Remove(d) != nil {
					break
				}
			}
		}
	}()
	mirrors := src.Mirrors
	if opts.BaseURL != "" {
		mirrors = []string{opts.BaseURL}
	}
	if len(mirrors) == 0 {
		return nil, fmt.Errorf("data: fetch %s: no URL to fetch from", src.Name)
	}
	client := opts.Client
	if client == nil {
		client = http.DefaultClient
	}
	for _, f := range src.Files {
		dst := filepath.Join(dir, f.Name)
		if ok, err := VerifyMD5(dst, f.MD5); err == nil && ok {
			results = append(results, FetchResult{Path: dst, Skipped: true})
			continue
		}
		var errs []error
		var res FetchResult
		for _, m := range mirrors {
			url := strings.TrimSuffix(m, "/") + "/" + f.Name
			n, err := download(ctx, client, url, dst, f.MD5, func(done, total int64) {
				if opts.Progress != nil {
					opts.Progress(f.Name, done, total)
				}
			})
			if err == nil {
				res = FetchResult{Path: dst, Bytes: n, URL: url}
				break
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		if res.Path == "" {
			return results, &FetchError{Dataset: src.Name, File: f.Name, Errs: errs}
		}
		results = append(results, res)
	}
	return results, nil
}

// FetchError is the error of a file that no mirror delivered: one error per mirror tried, all
// reachable with errors.Is and errors.As (a *net.DNSError when offline).
type FetchError struct {
	Dataset, File string
	Errs          []error
}

func (e *FetchError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("data: fetch %s: %s", e.Dataset, strings.Join(msgs, "; "))
}

// Unwrap returns the mirrors' errors.
func (e *FetchError) Unwrap() []error { return e.Errs }

// missingDirs lists dir and those of its parents that do not exist yet, deepest first.
func missingDirs(dir string) []string {
	var out []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || !errors.Is(err, os.ErrNotExist) {
			return out
		}
		out = append(out, d)
		if filepath.Dir(d) == d {
			return out
		}
	}
}

// VerifyMD5 reports whether the file at path has the given MD5 (hex). A missing file is (false, nil).
func VerifyMD5(path, want string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("file %s: %w", path, err)
	}
	return strings.EqualFold(hex.EncodeToString(h.Sum(nil)), want), nil
}

// progressWriter reports the bytes written through it.
type progressWriter struct {
	done, total int64
	report      func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	p.report(p.done, p.total)
	return len(b), nil
}

// download fetches url into dst through a temporary file that is renamed into place only when the
// transfer is complete and its MD5 is wantMD5.
func download(ctx context.Context, client *http.Client, url, dst, wantMD5 string, report func(done, total int64)) (n int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: HTTP %s", url, resp.Status)
	}
	tmp, err := atomicfile.Create(dst)
	if err != nil {
		return 0, err
	}
	defer tmp.Abort()
	h := md5.New()
	pw := &progressWriter{total: resp.ContentLength, report: report}
	report(0, resp.ContentLength)
	n, err = io.Copy(io.MultiWriter(tmp, h, pw), resp.Body)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return n, fmt.Errorf("%s: truncated transfer after %d of %d bytes: %w", url, n, resp.ContentLength, err)
		}
		return n, fmt.Errorf("%s: after %d bytes: %w", url, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("%s: truncated transfer: %d of %d bytes", url, n, resp.ContentLength)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, wantMD5) {
		return n, fmt.Errorf("%s: MD5 %s, want %s (corrupt or changed file; nothing written)", url, got, wantMD5)
	}
	if err = tmp.Commit(0o644); err != nil {
		return n, fmt.Errorf("file %w", err)
	}
	return n, nil
}
