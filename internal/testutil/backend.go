package testutil

import (
	"sync"

	"github.com/gomlx/gomlx/backends"

	"github.com/ifa-toolkit/ifa/internal/cpu"
)

var backendOnce = sync.OnceValue(func() backends.Backend {
	b, err := cpu.New("")
	if err != nil {
		panic(err)
	}
	return b
})

// Backend returns the backend ifa's tests run on: the pure-Go CPU backend, shared by all tests of a
// package.
func Backend() backends.Backend { return backendOnce() }
