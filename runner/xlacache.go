package runner

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ifa-toolkit/ifa/internal/atomicfile"
)

// XLA options ifa sets by default on XLA backends (compile time and the persistent compile cache),
// each only when the plugin knows the option (its name occurs in the plugin file: XLA aborts the
// process on an unknown XLA_FLAGS option) and XLA_FLAGS does not set it already.
const (
	// xlaLLVMParallel splits the LLVM module of a GPU executable so that its code generation
	// (LLVM, PTX, ptxas) runs on several threads; off by default in XLA.
	xlaLLVMParallel = "--xla_gpu_enable_llvm_module_compilation_parallelism"
	// xlaKernelCache is a file of compiled GPU kernels that later compiles reuse and extend.
	xlaKernelCache = "--xla_gpu_kernel_cache_file"
	// xlaAutotuneDir is a folder of per-fusion autotuning results (XLA's default cache mode,
	// "update", reads and extends it).
	xlaAutotuneDir = "--xla_gpu_per_fusion_autotune_cache_dir"
)

// xlaDefaultFlagNames are the options whose presence in a plugin file is looked up.
var xlaDefaultFlagNames = []string{xlaLLVMParallel, xlaKernelCache, xlaAutotuneDir}

// CompileCacheEnv selects the persistent compile cache of XLA backends: unset, "" or "auto" for
// <user cache folder>/ifa (os.UserCacheDir), "off" for none, or a folder.
const CompileCacheEnv = "IFA_COMPILE_CACHE"

// pluginIdentity names a plugin file: a cache entry written with another plugin (another path,
// size or modification time) is never read.
type pluginIdentity struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
}

func identifyPlugin(path string) (pluginIdentity, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return pluginIdentity{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return pluginIdentity{}, err
	}
	return pluginIdentity{Path: abs, Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}, nil
}

// key is the cache folder name of the plugin: 16 hex digits of a SHA-256 of its identity.
func (p pluginIdentity) key() string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", p.Path, p.Size, p.ModTime))
	return hex.EncodeToString(h[:8])
}

// scanFlagNames reports which of names occur, without their leading "--", as C strings (followed
// by a NUL byte) in the file r, read once in chunks. XLA registers each option under its name as a
// string literal; the protocol-buffer descriptor of its options holds the field names too, not
// NUL-terminated, and a field need not be a registered option, so those do not count.
func scanFlagNames(r io.Reader, names []string) (map[string]bool, error) {
	found := map[string]bool{}
	longest := 0
	needles := map[string][]byte{}
	for _, n := range names {
		found[n] = false
		needles[n] = append([]byte(strings.TrimPrefix(n, "--")), 0)
		longest = max(longest, len(needles[n]))
	}
	const chunk = 4 << 20
	buf := make([]byte, 0, chunk+longest)
	br := bufio.NewReaderSize(r, chunk)
	for {
		n, err := io.ReadFull(br, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for _, name := range names {
			if !found[name] && bytes.Contains(buf, needles[name]) {
				found[name] = true
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return found, nil
		}
		if err != nil {
			return nil, err
		}
		// Keep the last longest-1 bytes: a name cut by the chunk boundary is found next time.
		keep := min(len(buf), longest-1)
		copy(buf, buf[len(buf)-keep:])
		buf = buf[:keep]
	}
}

// flagScanFile is the cached answer of scanFlagNames for one plugin; Scan is flagScanVersion.
type flagScanFile struct {
	Scan   int             `json:"scan"`
	Plugin pluginIdentity  `json:"plugin"`
	Found  map[string]bool `json:"found"`
}

// flagScanVersion changes whenever scanFlagNames's rule changes, so older answers are not reused.
const flagScanVersion = 2

var (
	flagScanMu    sync.Mutex
	flagScanMemo  = map[pluginIdentity]map[string]bool{}
	flagScanCount int // scans of plugin files in this process (tests)
)

// pluginFlags returns which of xlaDefaultFlagNames the plugin knows: from this process's memo,
// else from dir/flags.json when it answers for this very plugin and every name, else by scanning
// the plugin (then written to dir/flags.json when dir is not ""). A corrupt flags.json is ignored
// with a warning.
func pluginFlags(p pluginIdentity, dir string, warn func(string)) (map[string]bool, error) {
	flagScanMu.Lock()
	defer flagScanMu.Unlock()
	if f, ok := flagScanMemo[p]; ok {
		return f, nil
	}
	cache := ""
	if dir != "" {
		cache = filepath.Join(dir, "flags.json")
		if raw, err := os.ReadFile(cache); err == nil {
			var s flagScanFile
			switch err := json.Unmarshal(raw, &s); {
			case err != nil:
				warn(fmt.Sprintf("compile cache: %s is corrupt (%v): ignored, the plugin is scanned again", cache, err))
			case s.Scan != flagScanVersion || s.Plugin != p || !hasAll(s.Found, xlaDefaultFlagNames):
				warn(fmt.Sprintf("compile cache: %s describes another plugin, other options or an older scan: ignored", cache))
			default:
				flagScanMemo[p] = s.Found
				return s.Found, nil
			}
		}
	}
	f, err := os.Open(p.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	found, err := scanFlagNames(f, xlaDefaultFlagNames)
	if err != nil {
		return nil, fmt.Errorf("reading plugin %s: %w", p.Path, err)
	}
	flagScanCount++
	flagScanMemo[p] = found
	if cache != "" {
		raw, _ := json.MarshalIndent(flagScanFile{Scan: flagScanVersion, Plugin: p, Found: found}, "", "  ")
		if err := atomicfile.WriteFile(cache, append(raw, '\n')); err != nil {
			warn(fmt.Sprintf("compile cache: %v", err))
		}
	}
	return found, nil
}

func hasAll(m map[string]bool, names []string) bool {
	for _, n := range names {
		if _, ok := m[n]; !ok {
			return false
		}
	}
	return true
}

// xlaFlagSet reports whether the XLA_FLAGS value flags sets option name (with or without a value).
func xlaFlagSet(flags, name string) bool {
	return slices.ContainsFunc(strings.Fields(flags), func(f string) bool {
		return f == name || strings.HasPrefix(f, name+"=")
	})
}

// compileCacheDir returns the cache folder for the setting of CompileCacheEnv ("" when off).
func compileCacheDir(setting string) (string, error) {
	switch setting {
	case "off", "none", "false", "0":
		return "", nil
	case "", "auto":
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("%s: no user cache folder (%v): set it to a folder or to off", CompileCacheEnv, err)
		}
		return filepath.Join(d, "ifa"), nil
	}
	return filepath.Abs(setting)
}

// xlaCompileFlags returns flags (an XLA_FLAGS value) with ifa's default compile options for the
// plugin file pluginPath added: LLVM module parallelism, and, with a cache folder (cacheSetting as
// CompileCacheEnv), XLA's kernel cache file and per-fusion autotune cache under
// <folder>/xla/<plugin key>/. Every option is added only when the plugin's file names it and flags
// does not set it already. Problems (no cache folder, a corrupt entry) are passed to warn and
// leave the option out or the entry aside; they never fail the backend.
func xlaCompileFlags(flags, pluginPath, cacheSetting string, warn func(string)) string {
	p, err := identifyPlugin(pluginPath)
	if err != nil {
		warn(fmt.Sprintf("XLA compile options: plugin %s: %v: none set", pluginPath, err))
		return flags
	}
	root, err := compileCacheDir(cacheSetting)
	if err != nil {
		warn(err.Error())
	}
	dir := ""
	if root != "" {
		dir = filepath.Join(root, "xla", p.key())
		if err := os.MkdirAll(filepath.Join(dir, "autotune"), 0o755); err != nil {
			warn(fmt.Sprintf("compile cache: %v: not used", err))
			dir = ""
		}
	}
	known, err := pluginFlags(p, dir, warn)
	if err != nil {
		warn(fmt.Sprintf("XLA compile options: %v: none set", err))
		return flags
	}
	add := func(name, value string) {
		if known[name] && !xlaFlagSet(flags, name) {
			flags = strings.TrimSpace(flags + " " + name + "=" + value)
		}
	}
	add(xlaLLVMParallel, "true")
	if dir != "" {
		kernels := filepath.Join(dir, "kernels.bin")
		if err := checkKernelCache(kernels); err != nil {
			aside := kernels + ".corrupt-" + time.Now().Format("20060102-150405")
			warn(fmt.Sprintf("compile cache: %s is corrupt (%v): moved to %s, kernels are compiled afresh", kernels, err, aside))
			if err := os.Rename(kernels, aside); err != nil {
				warn(fmt.Sprintf("compile cache: %v: the kernel cache is not used", err))
				kernels = ""
			}
		}
		if kernels != "" {
			add(xlaKernelCache, kernels)
		}
		checkAutotuneDir(filepath.Join(dir, "autotune"), warn)
		add(xlaAutotuneDir, filepath.Join(dir, "autotune"))
	}
	return flags
}

// checkKernelCache checks that XLA's kernel cache file (a serialized protocol buffer: a sequence
// of length-delimited fields) is whole: every field's tag and length lie within the file. A file
// cut short by a process killed while writing it fails. A missing file is fine (nothing cached yet).
func checkKernelCache(path string) error {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return checkProtoWire(data)
}

// checkProtoWire walks the top level of a protocol-buffer message: varint tags with field number
// >= 1 and wire types 0 (varint), 1 (8 bytes), 2 (length-delimited) or 5 (4 bytes), each value
// within data.
func checkProtoWire(data []byte) error {
	for i := 0; i < len(data); {
		tag, n := binary.Uvarint(data[i:])
		if n <= 0 {
			return fmt.Errorf("byte %d: truncated tag", i)
		}
		i += n
		if tag>>3 == 0 {
			return fmt.Errorf("byte %d: field number 0", i-n)
		}
		switch tag & 7 {
		case 0:
			_, n := binary.Uvarint(data[i:])
			if n <= 0 {
				return fmt.Errorf("byte %d: truncated varint", i)
			}
			i += n
		case 1, 5:
			w := 8
			if tag&7 == 5 {
				w = 4
			}
			if len(data)-i < w {
				return fmt.Errorf("byte %d: truncated fixed-width value", i)
			}
			i += w
		case 2:
			l, n := binary.Uvarint(data[i:])
			if n <= 0 || l > uint64(len(data)-i-n) {
				return fmt.Errorf("byte %d: length-delimited field runs past the end (%d bytes)", i, len(data))
			}
			i += n + int(l)
		default:
			return fmt.Errorf("byte %d: wire type %d", i-n, tag&7)
		}
	}
	return nil
}

// checkAutotuneDir removes empty files and leftover temporaries from the per-fusion autotune
// folder (an entry cut short by a killed process), each with a warning.
func checkAutotuneDir(dir string, warn func(string)) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if info.Size() == 0 || strings.Contains(e.Name(), ".tmp") {
			path := filepath.Join(dir, e.Name())
			warn(fmt.Sprintf("compile cache: removing the incomplete autotune entry %s", path))
			_ = os.Remove(path)
		}
	}
}
