// Package layering holds no code: its test checks the import rules of docs/ARCHITECTURE.md over
// every package of the module (go list), and fails on a forbidden import.
package layering
