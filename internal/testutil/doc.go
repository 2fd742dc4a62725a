// Package testutil holds what ifa's tests share: the backend they run on (the pure-Go CPU
// backend, one per test binary) and DrawBits, which compares ways of drawing random values bit for
// bit.
package testutil
