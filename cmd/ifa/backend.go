package main

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"

	"github.com/ifa-toolkit/ifa/internal/cpu"
)

// NewBackend creates the backend named by --backend: "cpu" (the default) is ifa's own pure-Go
// backend, "go" is GoMLX's simplego. The default never touches the network.
func (a *App) NewBackend() (backends.Backend, error) {
	spec := a.Globals.Backend
	name, config, _ := strings.Cut(spec, ":")
	switch name {
	case "cpu":
		return cpu.New(config)
	case "go":
		return simplego.New(config)
	case "xla":
		return newXLABackend(config)
	}
	return nil, fmt.Errorf("--backend %q: unknown backend, want cpu, go, xla:cuda or xla:cpu", spec)
}
