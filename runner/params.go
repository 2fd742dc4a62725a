package runner

import (
	"fmt"
	"maps"
	"reflect"
	"strings"

	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/internal/param"
	"github.com/ifa-toolkit/ifa/ssl"
)

// paramFlags returns the values of cmd's flags tagged `param:"KEY"` (or `param:"!KEY"`, a bool
// flag that sets KEY to its negation) whose KEY is in table: the flags that mirror a method's
// tunables, so that the table alone declares each tunable's default and description.
func paramFlags(cmd any, table param.Table) map[string]any {
	out := map[string]any{}
	v := reflect.ValueOf(cmd).Elem()
	for i := range v.NumField() {
		tag, ok := v.Type().Field(i).Tag.Lookup("param")
		if !ok {
			continue
		}
		key, negate := strings.CutPrefix(tag, "!")
		if _, ok := table.Lookup(key); !ok {
			continue
		}
		val := v.Field(i).Interface()
		if negate {
			val = !val.(bool)
		}
		out[key] = val
	}
	return out
}

// HelpVars are the variables of the options' help texts and defaults (the struct tags' ${name}; pass
// them to Defaults): every method parameter's
// default (its key) and description (KEY_doc), the distillation methods and their default βs.
func HelpVars() map[string]string {
	vars := map[string]string{}
	maps.Copy(vars, distill.Params().Vars())
	var betas []string
	for _, n := range distill.Names() {
		m, _ := distill.Get(n)
		betas = append(betas, fmt.Sprintf("%s %g", n, distill.DefaultBeta(m)))
	}
	ifacd, _ := distill.Get("ifacd")
	vars["ifacd_beta"] = fmt.Sprint(distill.DefaultBeta(ifacd))
	vars["ema_momentum"] = fmt.Sprint(ssl.DefaultMomentum)
	vars["distill_methods"] = strings.Join(distill.Names(), ", ")
	vars["distill_betas"] = strings.Join(betas, ", ")
	vars["kd_temperature"] = fmt.Sprint(distill.DefaultKDTemperature)
	// The recipes' base rates (ifard's and repdistiller's are the same).
	rd := distill.Recipes["repdistiller"]
	vars["recipe_lr"], vars["recipe_light_lr"] = fmt.Sprint(rd.LR), fmt.Sprint(rd.LightLR)
	vars["adamw_lr"] = fmt.Sprint(distill.AdamWLR)
	return vars
}
