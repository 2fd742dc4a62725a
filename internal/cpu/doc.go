// Package cpu is ifa's pure-Go GoMLX backend: it needs no C library and implements every op the
// ifa models need to train (convolutions and their gradients, padding, reversal, window reductions
// and their scatter gradients, dynamic slices, ...), with parallel kernels for the heavy ops.
//
// It must not import any other ifa package.
package cpu
