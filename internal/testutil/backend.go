package testutil

import (
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

var backendOnce = sync.OnceValue(func() backends.Backend {
	b, err := simplego.New("ops_sequential")
	if err != nil {
		panic(err)
	}
	return b
})

// Backend returns the backend ifa's tests run on: the pure-Go CPU backend, shared by all tests of a
// package.
func Backend() backends.Backend { return backendOnce() }
