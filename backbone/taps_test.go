package backbone

import (
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

func TestParseTapChoice(t *testing.T) {
	cases := []struct {
		in, canonical string
		source        TapSource
		taps, blocks  int
		want          []int
	}{
		{"last:2", "last:2", SourceTaps, 5, 3, []int{3, 4}},
		{" 3 ", "last:3", SourceTaps, 5, 3, []int{2, 3, 4}},
		{"blocks", "blocks", SourceBlocks, 5, 3, []int{0, 1, 2}},
		{"blocks:last:2", "blocks:last:2", SourceBlocks, 5, 3, []int{1, 2}},
		{"blocks:2", "blocks:last:2", SourceBlocks, 5, 3, []int{1, 2}},
		{"blocks:-1,0", "blocks:-1,0", SourceBlocks, 5, 3, []int{2, 0}},
		{"blocks:all", "blocks", SourceBlocks, 5, 3, []int{0, 1, 2}},
		{"taps", "taps", SourceTaps, 4, 3, []int{0, 1, 2, 3}},
		{"all", "taps", SourceTaps, 4, 3, []int{0, 1, 2, 3}},
		{"0,2,-1", "0,2,-1", SourceTaps, 6, 3, []int{0, 2, 5}},
		{"taps:0,-1", "0,-1", SourceTaps, 6, 3, []int{0, 5}},
		{"taps:last:1", "last:1", SourceTaps, 6, 3, []int{5}},
	}
	for _, c := range cases {
		choice, err := ParseTapChoice(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if choice.Source != c.source || choice.String() != c.canonical {
			t.Errorf("%q: source %s, text %q; want %s, %q", c.in, choice.Source, choice.String(), c.source, c.canonical)
		}
		got, err := choice.Resolve(c.taps, c.blocks)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q on %d taps / %d blocks: %v, want %v", c.in, c.taps, c.blocks, got, c.want)
		}
		back, err := ParseTapChoice(choice.String())
		if err != nil || back.Source != choice.Source {
			t.Fatalf("round trip of %q: %+v, %v", c.in, back, err)
		}
		if again, _ := back.Resolve(c.taps, c.blocks); !slices.Equal(again, got) {
			t.Errorf("round trip of %q changed the selection to %v", c.in, again)
		}
	}
	for _, bad := range []string{"", "blocks:", "taps:", "last:0", "last:x", "blocks:x", "taps:last:0", "block", "stages", "0,0"} {
		choice, err := ParseTapChoice(bad)
		if err == nil {
			_, err = choice.Resolve(3, 3)
		}
		if err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	// Errors say what the model has.
	choice, _ := ParseTapChoice("last:4")
	if _, err := choice.Resolve(3, 5); err == nil || !strings.Contains(err.Error(), "3 taps") {
		t.Errorf("last:4 on 3 taps: %v", err)
	}
	choice, _ = ParseTapChoice("blocks")
	if _, err := choice.Resolve(3, 0); err == nil || !strings.Contains(err.Error(), "no blocks") {
		t.Errorf("blocks on none: %v", err)
	}
	if err := (TapChoice{Source: "stages", Layers: LayerSelect{All: true}}).Validate(); err == nil {
		t.Error("unknown source: no error")
	}
	if err := (TapChoice{Source: SourceTaps}).Validate(); err == nil {
		t.Error("empty selection: no error")
	}
}

// TestTapChoiceSelect checks the selected nodes on a CNN-like Features (stages, taps, tap vectors)
// and a ViT-like one (taps only), and that block vectors are the stage maps' spatial means.
func TestTapChoiceSelect(t *testing.T) {
	g := graph.NewGraph(testutil.Backend(), "taps")
	defer g.Finalize()
	param := func(name string, dims ...int) *graph.Node {
		return graph.Parameter(g, name, shapes.Make(dtypes.Float32, dims...))
	}
	cnn := Features{
		Stages:     []*graph.Node{param("f0", 2, 8, 8, 3), param("f1", 2, 8, 8, 4), param("f2", 2, 4, 4, 5), param("f3", 2, 2, 2, 6)},
		Taps:       []*graph.Node{param("t0", 2, 4, 4, 5), param("t1", 2, 2, 2, 6), param("t2", 2, 2, 2, 6)},
		TapVectors: []*graph.Node{param("v0", 2, 5), param("v1", 2, 6), param("v2", 2, 6)},
	}
	choice, _ := ParseTapChoice("last:2")
	maps, vectors, err := choice.Select(cnn)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(maps, cnn.Taps[1:]) || !slices.Equal(vectors, cnn.TapVectors[1:]) {
		t.Errorf("last:2 selected %v / %v", maps, vectors)
	}
	choice, _ = ParseTapChoice("blocks:-1,0")
	maps, vectors, err = choice.Select(cnn)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(maps, []*graph.Node{cnn.Stages[3], cnn.Stages[1]}) {
		t.Errorf("blocks:-1,0 selected maps %v", maps)
	}
	if len(vectors) != 2 || vectors[0].Shape().Dim(-1) != 6 || vectors[1].Shape().Dim(-1) != 4 {
		t.Fatalf("blocks:-1,0 vectors %v", vectors)
	}
	if NumBlocks(cnn) != 3 {
		t.Errorf("NumBlocks = %d, want 3", NumBlocks(cnn))
	}

	token := Features{
		Taps:       []*graph.Node{param("x1", 2, 5, 4), param("x2", 2, 5, 4)},
		TapVectors: []*graph.Node{param("c1", 2, 4), param("c2", 2, 4)},
	}
	for _, text := range []string{"blocks", "taps"} {
		choice, _ = ParseTapChoice(text)
		maps, vectors, err = choice.Select(token)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(maps, token.Taps) || !slices.Equal(vectors, token.TapVectors) {
			t.Errorf("%s on a token model selected %v / %v", text, maps, vectors)
		}
	}
	if NumBlocks(token) != 2 {
		t.Errorf("token NumBlocks = %d, want 2", NumBlocks(token))
	}
	bad := token
	bad.TapVectors = bad.TapVectors[:1]
	if _, _, err := choice.Select(bad); err == nil {
		t.Error("2 tap maps with 1 vector: no error")
	}
	choice, _ = ParseTapChoice("blocks:last:4")
	if _, _, err := choice.Select(cnn); err == nil || !strings.Contains(err.Error(), "3 blocks") {
		t.Errorf("blocks:last:4 on 3 blocks: %v", err)
	}

	// Block vectors are spatial means: on a [1, 2, 2, 2] map with channels (1, 2, 3, 4) and
	// (10, 20, 30, 40) over the pixels, [2.5, 25].
	got, err := graph.ExecOnce(testutil.Backend(), func(x *graph.Node) *graph.Node {
		_, v := BlockOutputs(Features{Stages: []*graph.Node{x, x}})
		return v[0]
	}, tensors.FromFlatDataAndDimensions([]float32{1, 10, 2, 20, 3, 30, 4, 40}, 1, 2, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	if v := tensors.MustCopyFlatData[float32](got); !slices.Equal(v, []float32{2.5, 25}) {
		t.Errorf("block vector %v, want [2.5 25]", v)
	}
}
