package main

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// NewBackend creates the backend named by --backend. The default never touches the network.
func (a *App) NewBackend() (backends.Backend, error) {
	spec := a.Globals.Backend
	name, config, _ := strings.Cut(spec, ":")
	switch name {
	case "cpu", "go":
		// The pure-Go CPU backend.
		return simplego.New(config)
	case "xla":
		return newXLABackend(config)
	}
	return nil, fmt.Errorf("--backend %q: unknown backend, want cpu, go, xla:cuda or xla:cpu", spec)
}
