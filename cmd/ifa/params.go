package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/alecthomas/kong"

	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/runner"
	"github.com/ifa-toolkit/ifa/ssl"
)

// ParamsCmd is the `ifa params` command: it lists the methods' tunable context parameters (the
// keys `ifa distill --param KEY=VALUE` accepts) with their defaults, grouped by method, then the
// pretraining methods (`ifa pretrain vit --method`) with their default heads.
type ParamsCmd struct {
	Format string `help:"Output: text (a table), or json (an array of objects with group, key, default, doc)." enum:"text,json,table" default:"text"`

	stdout io.Writer
}

// paramRow is one parameter in the listing.
type paramRow struct {
	Group   string `json:"group"`
	Key     string `json:"key"`
	Default any    `json:"default"`
	Doc     string `json:"doc"`
}

// allParams lists every method's tunables, grouped by method.
func allParams() []paramRow {
	var rows []paramRow
	for _, n := range distill.Names() {
		m, _ := distill.Get(n)
		for _, p := range distill.ParamsOf(m) {
			rows = append(rows, paramRow{Group: n, Key: p.Key, Default: p.Default, Doc: p.Doc})
		}
	}
	// The pretraining methods of the ssl registry (ifa pretrain vit --method), with their defaults.
	for _, m := range ssl.Methods() {
		rows = append(rows, paramRow{Group: "pretrain --method", Key: string(m), Default: ssl.MethodDefaults(m), Doc: m.Impl().Doc()})
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

// cliVars are the variables of the flags' help texts and defaults (runner.HelpVars).
func cliVars() kong.Vars { return kong.Vars(runner.HelpVars()) }
