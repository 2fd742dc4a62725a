package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/data"
)

// Fetch downloads a dataset and verifies its checksums (the options of `ifa data fetch`).
type Fetch struct {
	Name    string        `arg:"" enum:"cifar10,cifar100,fashion-mnist,mnist" help:"Dataset to download: cifar10, cifar100, fashion-mnist or mnist."`
	DataDir string        `name:"data-dir" aliases:"dir" help:"Folder to download into: the files go to DATA-DIR/NAME, where every command's --data-dir finds them (default: the user cache folder, e.g. ~/.cache/ifa/datasets)." type:"path" env:"IFA_DATA_DIR"`
	BaseURL string        `name:"base-url" help:"Download from this mirror instead of the canonical URLs: each file is fetched as BASE-URL/FILE (default: the canonical URLs)." env:"IFA_DATA_BASE_URL"`
	Timeout time.Duration `help:"Give up when the whole download takes longer than this." default:"1h"`
}

// ErrInterrupted is wrapped by the runs other than training ones (those wrap fit.ErrInterrupted)
// when their context is cancelled.
var ErrInterrupted = errors.New("interrupted")

// Run downloads into DataDir/Name (DataDir empty: data.DefaultRoot()) and returns that folder.
// Cancelling interrupted stops the download (an error wrapping ErrInterrupted; no partial file
// is left); progress goes to standard error on env.Terminal, to env.Log otherwise.
func (c *Fetch) Run(interrupted context.Context, env Env) (string, error) {
	root := c.DataDir
	if root == "" {
		root = data.DefaultRoot()
	}
	dir := filepath.Join(root, c.Name)
	ctx, cancel := context.WithTimeout(interrupted, c.Timeout)
	defer cancel()
	bar := &progressBar{out: os.Stderr, terminal: env.Terminal, log: env.Log}
	results, err := data.Fetch(ctx, c.Name, dir, data.FetchOptions{
		BaseURL:  c.BaseURL,
		Client:   &http.Client{Transport: http.DefaultTransport},
		Progress: bar.update,
	})
	bar.finish()
	for _, r := range results {
		if r.Skipped {
			env.Log.Info().Str("file", r.Path).Msg("already there, checksum verified")
		} else {
			env.Log.Info().Str("file", r.Path).Int64("bytes", r.Bytes).Str("url", r.URL).Msg("downloaded, checksum verified")
		}
	}
	switch {
	case err == nil:
	case interrupted.Err() != nil:
		return "", fmt.Errorf("data fetch %s: %w: no partial file is left", c.Name, ErrInterrupted)
	case offline(err):
		return "", fmt.Errorf("data fetch %s: cannot reach the download server (%v); offline, %s", c.Name, rootCause(err), offlineHint(c.Name, dir))
	default:
		return "", err
	}
	env.Log.Info().Str("dataset", c.Name).Str("dir", dir).Msgf("ready: `ifa data info %s --data-dir %s`", c.Name, root)
	return dir, nil
}

// offline reports whether a fetch failed for want of a network: a name that does not resolve, a
// connection refused or unreachable, a timeout.
func offline(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	var timeout interface{ Timeout() bool }
	return errors.As(err, &dns) || errors.As(err, &op) || (errors.As(err, &timeout) && timeout.Timeout())
}

// rootCause is the innermost error of the first mirror's failure.
func rootCause(err error) error {
	var fe *data.FetchError
	if errors.As(err, &fe) && len(fe.Errs) > 0 {
		err = fe.Errs[0]
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// offlineHint says how to get a dataset without the network.
func offlineHint(name, dir string) string {
	var files []string
	if src, err := data.SourceFor(name); err == nil {
		for _, f := range src.Files {
			files = append(files, f.Name)
		}
	}
	hint := fmt.Sprintf("copy %s into %s and run this command again to verify them", strings.Join(files, ", "), dir)
	if name == data.FashionMNIST {
		hint += ", or install Debian's dataset-fashion-mnist package (read from /usr/share/datasets/fashion-mnist without --data-dir)"
	}
	return hint
}

// progressBar draws a one-line download progress bar on a terminal, or logs every 10% otherwise.
type progressBar struct {
	out      io.Writer
	terminal bool
	log      zerolog.Logger

	file        string
	start, last time.Time
	lastTenth   int64
	drawn       bool
}

func (p *progressBar) update(file string, done, total int64) {
	now := time.Now()
	if file != p.file {
		p.finish()
		p.file, p.start, p.lastTenth = file, now, -1
		if !p.terminal {
			p.log.Info().Str("file", file).Int64("bytes", total).Msg("downloading")
		}
	}
	if !p.terminal {
		if total > 0 {
			if tenth := done * 10 / total; tenth > p.lastTenth {
				p.lastTenth = tenth
				p.log.Info().Str("file", file).Int64("done", done).Int64("bytes", total).Msgf("%d%%", tenth*10)
			}
		}
		return
	}
	if now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	}
	p.last = now
	rate := float64(done) / max(now.Sub(p.start).Seconds(), 1e-3)
	const width = 30
	line := fmt.Sprintf("%-28s %8.1f MB", file, float64(done)/1e6)
	if total > 0 {
		n := int(done * width / total)
		line = fmt.Sprintf("%-28s [%s%s] %3d%% %7.1f/%.1f MB", file, strings.Repeat("=", n), strings.Repeat(" ", width-n),
			done*100/total, float64(done)/1e6, float64(total)/1e6)
	}
	fmt.Fprintf(p.out, "\r%s %6.1f MB/s ", line, rate/1e6)
	p.drawn = true
}

// finish ends the bar's line.
func (p *progressBar) finish() {
	if p.drawn {
		fmt.Fprintln(p.out)
		p.drawn = false
	}
}

// DataInfo describes a dataset (the options of `ifa data info`).
type DataInfo struct {
	Name     string `arg:"" help:"Dataset: fashion-mnist, mnist, cifar10, cifar100, or the path of an image folder (root/<class>/*.png|jpg or root/{train,test}/<class>/...)."`
	DataDir  string `name:"data-dir" aliases:"dir" help:"Folder holding the named dataset, as given to 'ifa data fetch --data-dir' (default: the user cache folder, then the system dataset folders)." type:"path" env:"IFA_DATA_DIR"`
	Format   string `help:"Output: text (a table), or json." enum:"text,json,table" default:"text"`
	Coarse   bool   `help:"CIFAR-100: count the 20 coarse labels instead of the 100 fine ones." default:"false"`
	Size     int    `help:"Image folders: the size images are resized to (SIZE×SIZE)." default:"32"`
	Channels int    `help:"Image folders: 1 (grayscale) or 3 (RGB) channels." default:"3"`
}

// SplitInfo is one split of a dataset: its counts, source and per-channel statistics.
type SplitInfo struct {
	Split       string    `json:"split"`
	Images      int       `json:"images"`
	Source      string    `json:"source"`
	Mean        []float64 `json:"mean"`
	Std         []float64 `json:"std"`
	ClassCounts []int     `json:"class_counts"`
}

// DatasetInfo describes a dataset (`ifa data info`).
type DatasetInfo struct {
	Name     string      `json:"name"`
	Height   int         `json:"height"`
	Width    int         `json:"width"`
	Channels int         `json:"channels"`
	Classes  []string    `json:"classes"`
	Splits   []SplitInfo `json:"splits"`
}

// Run reads the dataset's splits (an image folder may lack its test split) and describes them.
func (c *DataInfo) Run(env Env) (*DatasetInfo, error) {
	opts := []data.Option{data.WithImageSize(c.Size, c.Size), data.WithChannels(c.Channels)}
	if c.Coarse {
		opts = append(opts, data.WithCoarseLabels())
	}
	name := c.Name
	if canon := data.CanonicalName(name); canon != "" {
		name = canon
	}
	var info DatasetInfo
	for _, split := range []string{"train", "test"} {
		ds, err := data.Open(c.Name, c.DataDir, split, opts...)
		if err != nil {
			if data.CanonicalName(c.Name) == "" && split == "test" && errors.Is(err, fs.ErrNotExist) {
				continue // an image folder without a test split
			}
			return nil, err
		}
		if info.Name == "" {
			info = DatasetInfo{Name: name, Height: ds.H, Width: ds.W, Channels: ds.C, Classes: ds.Classes}
		} else if ds.H != info.Height || ds.W != info.Width || ds.C != info.Channels || len(ds.Classes) != len(info.Classes) {
			return nil, fmt.Errorf("%s: the %s split has %dx%dx%d images and %d classes, train %dx%dx%d and %d",
				c.Name, split, ds.H, ds.W, ds.C, len(ds.Classes), info.Height, info.Width, info.Channels, len(info.Classes))
		}
		mean, std := ds.ChannelStats()
		info.Splits = append(info.Splits, SplitInfo{Split: split, Images: ds.Len(), Source: ds.Source, Mean: mean, Std: std, ClassCounts: ds.ClassCounts()})
		env.Log.Debug().Str("split", split).Str("source", ds.Source).Int("images", ds.Len()).Msg("read")
	}
	return &info, nil
}
