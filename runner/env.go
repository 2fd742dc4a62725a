package runner

import (
	stdctx "context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/fit"
)

// Env is what a run needs besides its options.
type Env struct {
	// Backend runs the graphs; the caller owns it (a run never finalises it).
	Backend backends.Backend
	// Log receives the run's events.
	Log zerolog.Logger
	// Terminal draws progress bars on standard error (set it only when that is a terminal).
	Terminal bool
	// Seed seeds initialisation, data order and augmentation.
	Seed int64
	// Devices splits each training step over that many devices of Backend (data parallelism); 0
	// or 1: one device.
	Devices int
	// RunDir is the run directory (config.json, metrics.jsonl, checkpoints/).
	RunDir string
	// Abort, when set, abandons a checkpoint being written once it is cancelled (a second Ctrl-C):
	// see fit.Job.Abort.
	Abort stdctx.Context
}

// UsageError is an error in a run's options: a value is malformed, out of range or conflicts with
// another option or with the data it names. Its message starts with the flag's name.
type UsageError struct{ Err error }

// Error returns the message.
func (u UsageError) Error() string { return u.Err.Error() }

// Unwrap returns the underlying error.
func (u UsageError) Unwrap() error { return u.Err }

// Usagef returns a UsageError with a formatted message (%w wraps).
func Usagef(format string, args ...any) error {
	return UsageError{fmt.Errorf(format, args...)}
}

// IsUsage reports whether err is (or wraps) a UsageError.
func IsUsage(err error) bool {
	var u UsageError
	return errors.As(err, &u)
}

// Check is one check of an option's value: the message names the flag and says what it wants.
type Check struct {
	ok  bool
	msg string
}

// Want is a check that passes when ok; the message (naming one flag) is used otherwise.
func Want(ok bool, format string, args ...any) Check {
	if ok {
		return Check{ok: true}
	}
	return Check{msg: fmt.Sprintf(format, args...)}
}

// FirstFailed returns the first failed check as a UsageError, prefixed with "cmd: " when cmd is
// set, or nil.
func FirstFailed(cmd string, checks ...Check) error {
	for _, c := range checks {
		if !c.ok {
			if cmd != "" {
				return Usagef("%s: %s", cmd, c.msg)
			}
			return Usagef("%s", c.msg)
		}
	}
	return nil
}

// CheckBatch refuses a batch larger than the training set.
func CheckBatch(batch, images int) error {
	if batch > images {
		return Usagef("--batch %d: larger than the %d training images", batch, images)
	}
	return nil
}

// CheckRunDir checks a run directory against resume: a fresh run refuses a directory that
// already holds checkpoints. It creates nothing: a run's first write (config.json) does, once
// every check has passed.
func CheckRunDir(dir string, resume bool) error {
	if resume {
		return nil
	}
	ck, err := fit.ListCheckpoints(dir)
	if err != nil {
		return err
	}
	if len(ck) > 0 {
		return Usagef("--out %s already holds checkpoints: add --resume to continue that run, or choose another --out", dir)
	}
	return nil
}

// DataParallel returns the data parallelism of env.Devices on env.Backend (nil for one device),
// after checking that every training batch splits evenly over the devices: batches of batch
// images, and the last batch of an epoch over examples images unless it is dropped.
func (env Env) DataParallel(batch, examples int, dropLast bool) (*fit.DataParallel, error) {
	n := env.Devices
	if n == 0 {
		n = 1
	}
	dp, err := fit.NewDataParallel(env.Backend, n)
	if err != nil || dp == nil {
		return nil, err
	}
	if batch%n != 0 {
		return nil, fmt.Errorf("--batch %d is not a multiple of --devices %d: every device takes an equal share of each batch", batch, n)
	}
	if last := examples % batch; !dropLast && last != 0 && examples > batch && last%n != 0 {
		return nil, fmt.Errorf("%d training images in batches of %d leave a last batch of %d, which does not split over --devices %d: change --batch or drop the last batch",
			examples, batch, last, n)
	}
	return dp, nil
}

// Defaults sets every field of the struct opts points to (and of its embedded structs) to the
// value of its `default` tag, the command line's default; vars resolves "${name}" in a tag (nil:
// HelpVars, the variables of the ifa command line). Fields without the tag keep their value.
func Defaults(opts any, vars map[string]string) error {
	v := reflect.ValueOf(opts)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("runner.Defaults: want a pointer to a struct, got %T", opts)
	}
	if vars == nil {
		vars = HelpVars()
	}
	return setDefaults(v.Elem(), vars)
}

func setDefaults(v reflect.Value, vars map[string]string) error {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if err := setDefaults(fv, vars); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		def, ok := f.Tag.Lookup("default")
		if !ok {
			continue
		}
		if strings.Contains(def, "${") {
			def = expandVars(def, vars)
		}
		if err := setValue(fv, def); err != nil {
			return fmt.Errorf("runner.Defaults: field %s: default %q: %w", f.Name, def, err)
		}
	}
	return nil
}

// expandVars replaces each ${name} in s with vars[name].
func expandVars(s string, vars map[string]string) string {
	for k, val := range vars {
		s = strings.ReplaceAll(s, "${"+k+"}", val)
	}
	return s
}

// setValue parses s into v (bool, integers, durations, floats, strings and comma-separated slices
// of them).
func setValue(v reflect.Value, s string) error {
	if v.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Float64, reflect.Float32:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.SetFloat(x)
	case reflect.Slice:
		var parts []string
		if s != "" {
			parts = strings.Split(s, ",")
		}
		sl := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := setValue(sl.Index(i), strings.TrimSpace(p)); err != nil {
				return err
			}
		}
		v.Set(sl)
	default:
		return fmt.Errorf("unsupported kind %s", v.Kind())
	}
	return nil
}
