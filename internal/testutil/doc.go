// Package testutil holds helpers shared by ifa tests: the backend tests run on, tolerance
// comparisons and finite-difference gradient checks.
package testutil
