package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/ssl"
)

// ParamsCmd is the `ifa params` command: it lists the methods' tunable context parameters (the
// keys `ifa distill --param KEY=VALUE` accepts, and the ones the pretraining flags set) with
// their defaults.
type ParamsCmd struct {
	Format string `help:"Output: table, or json (an array of objects with group, key, default, doc)." enum:"table,json" default:"table"`

	stdout io.Writer
}

// paramRow is one parameter in the listing.
type paramRow struct {
	Group   string `json:"group"`
	Key     string `json:"key"`
	Default any    `json:"default"`
	Doc     string `json:"doc"`
}

// allParams lists every package's tunables, grouped by owner.
func allParams() []paramRow {
	var rows []paramRow
	for _, p := range ssl.Params() {
		rows = append(rows, paramRow{Group: "ssl", Key: p.Key, Default: p.Default, Doc: p.Doc})
	}
	rows = append(rows, paramRow{Group: "kd", Key: distill.ParamKDTemperature, Default: distill.DefaultKDTemperature, Doc: "KD softmax temperature T"})
	for _, g := range []struct {
		name string
		ps   []distill.Param
	}{{"ifacd", distill.IFACDParams()}, {"distill", distill.Params()}} {
		for _, p := range g.ps {
			rows = append(rows, paramRow{Group: g.name, Key: p.Key, Default: p.Default, Doc: p.Doc})
		}
	}
	return rows
}

// Run implements the command.
func (c *ParamsCmd) Run(app *App) error {
	out := c.stdout
	if out == nil {
		out = os.Stdout
	}
	rows := allParams()
	if c.Format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tKEY\tDEFAULT\tDESCRIPTION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", r.Group, r.Key, r.Default, r.Doc)
	}
	return tw.Flush()
}
