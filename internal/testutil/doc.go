// Package testutil holds what ifa's tests share: the backend they run on (the pure-Go CPU
// backend, one per test binary).
package testutil
