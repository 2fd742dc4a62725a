package vit

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// A naive float64 ViT written from the formulas, reading its weights from a context: the reference
// the graph code is checked against.

type mat struct {
	rows, cols int
	v          []float64
}

func (m mat) at(i, j int) float64 { return m.v[i*m.cols+j] }

// vecMat returns x·W + b for x [in], W [in, out], b [out].
func vecMat(x []float64, w mat, b []float64) []float64 {
	out := make([]float64, w.cols)
	for j := range out {
		s := b[j]
		for i, xi := range x {
			s += xi * w.at(i, j)
		}
		out[j] = s
	}
	return out
}

func refLayerNorm(x, gain, offset []float64, eps float64) []float64 {
	var mean float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	var variance float64
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	variance /= float64(len(x))
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = (v-mean)/math.Sqrt(variance+eps)*gain[i] + offset[i]
	}
	return out
}

func refGELU(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

// refAttention: q [T][D], k, v [S][D] -> [T][D], heads of width D/heads, scale 1/√d_h.
func refAttention(q, k, v [][]float64, heads int) [][]float64 {
	d := len(q[0])
	dh := d / heads
	out := make([][]float64, len(q))
	for i := range out {
		out[i] = make([]float64, d)
	}
	for h := range heads {
		lo := h * dh
		for i := range q {
			scores := make([]float64, len(k))
			maxS := math.Inf(-1)
			for j := range k {
				var s float64
				for e := lo; e < lo+dh; e++ {
					s += q[i][e] * k[j][e]
				}
				s /= math.Sqrt(float64(dh))
				scores[j] = s
				maxS = max(maxS, s)
			}
			var z float64
			for j := range scores {
				scores[j] = math.Exp(scores[j] - maxS)
				z += scores[j]
			}
			for j := range scores {
				for e := lo; e < lo+dh; e++ {
					out[i][e] += scores[j] / z * v[j][e]
				}
			}
		}
	}
	return out
}

// refParams reads a variable of the model scope as float64.
type refParams struct {
	t   *testing.T
	ctx *context.Context
}

func (p refParams) vec(scope, name string) []float64 {
	p.t.Helper()
	v := p.ctx.GetVariableByScopeAndName(scope, name)
	if v == nil {
		p.t.Fatalf("variable %s/%s missing", scope, name)
	}
	return toF64(p.t, v.MustValue())
}

func (p refParams) mat(scope string) (mat, []float64) {
	p.t.Helper()
	v := p.ctx.GetVariableByScopeAndName(scope, "weights")
	if v == nil {
		p.t.Fatalf("variable %s/weights missing", scope)
	}
	dims := v.Shape().Dimensions
	return mat{rows: dims[0], cols: dims[1], v: toF64(p.t, v.MustValue())}, p.vec(scope, "biases")
}

func toF64(t *testing.T, x *tensors.Tensor) []float64 {
	t.Helper()
	switch x.DType().String() {
	case "Float32":
		f := tensors.MustCopyFlatData[float32](x)
		out := make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(v)
		}
		return out
	case "Float64":
		return tensors.MustCopyFlatData[float64](x)
	}
	t.Fatalf("unexpected dtype %s", x.DType())
	return nil
}

// refOutput is the reference forward pass of one image.
type refOutput struct {
	taps    [][][]float64 // [L][T][D]
	vectors [][]float64   // [L][D]
	logits  []float64
}

// refForward runs the naive ViT on image img [H][W][C] flattened channels-last, with the model's
// variables under root scope "/".
func refForward(t *testing.T, ctx *context.Context, c Config, img []float64) refOutput {
	p := refParams{t: t, ctx: ctx}
	d, pp := c.Dim, c.Patch
	we, be := p.mat("/" + ScopePatchEmbed)
	cls := p.vec("/", VarClsToken)
	pos := p.vec("/", VarPosEmbed)
	x := [][]float64{append([]float64(nil), cls...)}
	for pr := 0; pr < c.ImageHeight/pp; pr++ {
		for pc := 0; pc < c.ImageWidth/pp; pc++ {
			patch := make([]float64, 0, pp*pp*c.Channels)
			for py := range pp {
				for px := range pp {
					for ch := range c.Channels {
						patch = append(patch, img[((pr*pp+py)*c.ImageWidth+pc*pp+px)*c.Channels+ch])
					}
				}
			}
			x = append(x, vecMat(patch, we, be))
		}
	}
	for tok := range x {
		for e := range d {
			x[tok][e] += pos[tok*d+e]
		}
	}
	var out refOutput
	for l := range c.Depth {
		s := "/" + BlockScope(l)
		g1, o1 := p.vec(s+"/norm1", "gain"), p.vec(s+"/norm1", "offset")
		wqkv, bqkv := p.mat(s + "/attn/qkv")
		wp, bp := p.mat(s + "/attn/proj")
		g2, o2 := p.vec(s+"/norm2", "gain"), p.vec(s+"/norm2", "offset")
		w1, b1 := p.mat(s + "/mlp/fc1")
		w2, b2 := p.mat(s + "/mlp/fc2")
		var q, k, v [][]float64
		for _, tok := range x {
			qkv := vecMat(refLayerNorm(tok, g1, o1, c.LayerNormEps), wqkv, bqkv)
			q, k, v = append(q, qkv[:d]), append(k, qkv[d:2*d]), append(v, qkv[2*d:])
		}
		att := refAttention(q, k, v, c.Heads)
		next := make([][]float64, len(x))
		for i, tok := range x {
			h := vecMat(att[i], wp, bp)
			a := make([]float64, d)
			for e := range d {
				a[e] = tok[e] + h[e]
			}
			m := vecMat(refLayerNorm(a, g2, o2, c.LayerNormEps), w1, b1)
			for j := range m {
				m[j] = refGELU(m[j])
			}
			m = vecMat(m, w2, b2)
			for e := range d {
				a[e] += m[e]
			}
			next[i] = a
		}
		x = next
		out.taps = append(out.taps, x)
		if c.Pooling == PoolMean {
			mean := make([]float64, d)
			for _, tok := range x {
				for e := range d {
					mean[e] += tok[e] / float64(len(x))
				}
			}
			out.vectors = append(out.vectors, mean)
		} else {
			out.vectors = append(out.vectors, refLayerNorm(x[0], p.vec("/"+ScopeNorm, "gain"), p.vec("/"+ScopeNorm, "offset"), c.LayerNormEps))
		}
	}
	if c.NumClasses > 0 {
		wh, bh := p.mat("/" + ScopeHead)
		out.logits = vecMat(out.vectors[len(out.vectors)-1], wh, bh)
	}
	return out
}

func randSlice(r *rand.Rand, n int, scale float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = r.NormFloat64() * scale
	}
	return out
}

func toF32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}
