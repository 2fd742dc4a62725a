// Package catch turns a panic into an error at an API boundary.
//
// GoMLX reports a mistake found while building a graph (a shape mismatch, a reused variable of
// another shape) by panicking, and ifa's graph-building code does the same. The style is one: ifa
// panics with an error value (panic(fmt.Errorf(...)) or panic(err)), never with a string, so that
// the error chain survives; and a function that builds a graph for a caller who expects an error
// recovers with Recover (or Error), nowhere else. Each ifa command has one such boundary, around
// the whole command.
package catch

import "fmt"

// Error converts a value recovered from a panic into an error: an error is returned as is,
// anything else is formatted with %v.
func Error(r any) error {
	if err, ok := r.(error); ok {
		return err
	}
	return fmt.Errorf("%v", r)
}

// Recover, deferred directly (defer catch.Recover(&err, "fit: ")), turns a panic of the
// surrounding function into its error: prefix followed by the recovered value, the chain kept.
func Recover(err *error, prefix string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s%w", prefix, Error(r))
	}
}
