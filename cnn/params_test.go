package cnn

import (
	"slices"
	"testing"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// referenceParams are the trainable parameter counts at 100 classes of RepDistiller's model_dict
// (METHODS.md §4.1).
var referenceParams = map[string]int{
	"resnet8":     83_892,
	"resnet14":    181_108,
	"resnet20":    278_324,
	"resnet32":    472_756,
	"resnet44":    667_188,
	"resnet56":    861_620,
	"resnet110":   1_736_564,
	"resnet8x4":   1_233_540,
	"resnet32x4":  7_433_860,
	"wrn_16_1":    180_916,
	"wrn_16_2":    703_284,
	"wrn_40_1":    569_780,
	"wrn_40_2":    2_255_156,
	"vgg8":        3_965_028,
	"vgg11":       9_277_284,
	"vgg13":       9_462_180,
	"vgg16":       14_774_436,
	"vgg19":       20_086_692,
	"mobilenetv2": 812_836,
	"resnet50":    23_705_252,
	"shufflev1":   949_258,
	"shufflev2":   1_355_528,
}

func TestParamCounts(t *testing.T) {
	names := Names()
	if len(names) != len(referenceParams) {
		t.Errorf("registry has %d models %v, reference table has %d", len(names), names, len(referenceParams))
	}
	for _, name := range names {
		want, ok := referenceParams[name]
		if !ok {
			t.Errorf("%s: no reference parameter count", name)
			continue
		}
		spec, err := Get(name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := spec.Describe(testutil.Backend(), MapShape{H: 32, W: 32, C: 3}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if info.Params != want {
			t.Errorf("%s: %d trainable parameters, reference %d (diff %d)", name, info.Params, want, info.Params-want)
		}
	}
}

// TestLightweight checks the models RepDistiller trains at learning rate 0.01.
func TestLightweight(t *testing.T) {
	var light []string
	for _, name := range Names() {
		if spec, _ := Get(name); spec.Family().Lightweight() {
			light = append(light, name)
		}
	}
	if want := []string{"mobilenetv2", "shufflev1", "shufflev2"}; !slices.Equal(light, want) {
		t.Errorf("lightweight models %v, want %v", light, want)
	}
}
