package nn

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// Attention is multi-head scaled dot-product attention without masks or projections:
// q, k, v: [B, T, D] are split into heads of width d_h = D/heads, each head computes
// softmax(q_h·k_hᵀ / √d_h)·v_h over the key axis, and the heads are concatenated back to [B, T, D]
// (head h owns features h·d_h … (h+1)·d_h−1). Key and value may have a different token count than
// the query ([B, S, D]); the output has the query's.
func Attention(q, k, v *graph.Node, heads int) *graph.Node {
	if q.Rank() != 3 || k.Rank() != 3 || v.Rank() != 3 {
		panic(fmt.Errorf("nn: attention wants q, k, v of rank 3 [B, T, D], got %s, %s, %s", q.Shape(), k.Shape(), v.Shape()))
	}
	b, t, d := q.Shape().Dim(0), q.Shape().Dim(1), q.Shape().Dim(2)
	s := k.Shape().Dim(1)
	if heads < 1 || d%heads != 0 {
		panic(fmt.Errorf("nn: attention: width %d is not divisible into %d heads", d, heads))
	}
	if k.Shape().Dim(0) != b || v.Shape().Dim(0) != b || k.Shape().Dim(2) != d || v.Shape().Dim(2) != d || v.Shape().Dim(1) != s {
		panic(fmt.Errorf("nn: attention: q %s, k %s, v %s do not match", q.Shape(), k.Shape(), v.Shape()))
	}
	dh := d / heads
	split := func(x *graph.Node, n int) *graph.Node { // [B, n, D] -> [B, H, n, dh]
		return graph.TransposeAllAxes(graph.Reshape(x, b, n, heads, dh), 0, 2, 1, 3)
	}
	qh, kh, vh := split(q, t), split(k, s), split(v, s)
	// scores[b, h, i, j] = Σ_e q[b, h, i, e]·k[b, h, j, e] / √dh
	scores := graph.DotGeneral(qh, []int{3}, []int{0, 1}, kh, []int{3}, []int{0, 1})
	scores = graph.MulScalar(scores, 1/math.Sqrt(float64(dh)))
	probs := graph.Softmax(scores, -1)
	// out[b, h, i, e] = Σ_j probs[b, h, i, j]·v[b, h, j, e]
	out := graph.DotGeneral(probs, []int{3}, []int{0, 1}, vh, []int{2}, []int{0, 1})
	return graph.Reshape(graph.TransposeAllAxes(out, 0, 2, 1, 3), b, t, d)
}
