package cnn

import (
	"math"
	"strconv"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// This file holds a naive float64 reference of every layer the models use, written from the
// PyTorch definitions (NCHW formulas transposed to NHWC), for the numerics tests.

// map4 is a float64 channels-last map [B, H, W, C].
type map4 struct {
	b, h, w, c int
	d          []float64
}

func newMap4(b, h, w, c int) map4 { return map4{b, h, w, c, make([]float64, b*h*w*c)} }

func (m map4) at(n, y, x, ch int) float64 { return m.d[((n*m.h+y)*m.w+x)*m.c+ch] }

func (m map4) idx(n, y, x, ch int) int { return ((n*m.h+y)*m.w+x)*m.c + ch }

// naiveConv: out[n,oy,ox,o] = bias[o] + Σ_{ky,kx,i} x[n, oy·s−p+ky·d, ox·s−p+kx·d, i] · w[ky,kx,i,o],
// with zero padding; w is HWIO [k, k, Cin, Cout].
func naiveConv(x map4, w []float64, k, cout int, bias []float64, stride, pad, dil int) map4 {
	return naiveGroupConv(x, w, k, cout, bias, stride, pad, dil, 1)
}

// naiveGroupConv is naiveConv with PyTorch's groups: output channel o of group γ = o/(Cout/G) sees
// only the input channels γ·Cin/G … (γ+1)·Cin/G − 1; w is [k, k, Cin/G, Cout].
func naiveGroupConv(x map4, w []float64, k, cout int, bias []float64, stride, pad, dil, groups int) map4 {
	cinG, coutG := x.c/groups, cout/groups
	oh := (x.h+2*pad-dil*(k-1)-1)/stride + 1
	ow := (x.w+2*pad-dil*(k-1)-1)/stride + 1
	out := newMap4(x.b, oh, ow, cout)
	for n := range x.b {
		for oy := range oh {
			for ox := range ow {
				for o := range cout {
					s := 0.0
					if bias != nil {
						s = bias[o]
					}
					for ky := range k {
						iy := oy*stride - pad + ky*dil
						if iy < 0 || iy >= x.h {
							continue
						}
						for kx := range k {
							ix := ox*stride - pad + kx*dil
							if ix < 0 || ix >= x.w {
								continue
							}
							for i := range cinG {
								s += x.at(n, iy, ix, (o/coutG)*cinG+i) * w[((ky*k+kx)*cinG+i)*cout+o]
							}
						}
					}
					out.d[out.idx(n, oy, ox, o)] = s
				}
			}
		}
	}
	return out
}

// naiveBN: PyTorch BatchNorm2d; train uses the batch mean and biased variance, eval the running ones.
func naiveBN(x map4, gamma, beta, runMean, runVar []float64, train bool) map4 {
	out := newMap4(x.b, x.h, x.w, x.c)
	cnt := float64(x.b * x.h * x.w)
	for ch := range x.c {
		mean, variance := runMean[ch], runVar[ch]
		if train {
			mean, variance = 0, 0
			for i := ch; i < len(x.d); i += x.c {
				mean += x.d[i]
			}
			mean /= cnt
			for i := ch; i < len(x.d); i += x.c {
				variance += (x.d[i] - mean) * (x.d[i] - mean)
			}
			variance /= cnt
		}
		for i := ch; i < len(x.d); i += x.c {
			out.d[i] = (x.d[i]-mean)/math.Sqrt(variance+1e-5)*gamma[ch] + beta[ch]
		}
	}
	return out
}

func naiveRelu(x map4) map4 {
	out := newMap4(x.b, x.h, x.w, x.c)
	for i, v := range x.d {
		out.d[i] = math.Max(v, 0)
	}
	return out
}

func naiveAdd(a, b map4) map4 {
	out := newMap4(a.b, a.h, a.w, a.c)
	for i := range a.d {
		out.d[i] = a.d[i] + b.d[i]
	}
	return out
}

// naiveMaxPool2: MaxPool2d(2, 2), floor mode.
func naiveMaxPool2(x map4) map4 {
	out := newMap4(x.b, x.h/2, x.w/2, x.c)
	for n := range x.b {
		for y := range out.h {
			for xx := range out.w {
				for ch := range x.c {
					m := math.Inf(-1)
					for dy := range 2 {
						for dx := range 2 {
							m = math.Max(m, x.at(n, 2*y+dy, 2*xx+dx, ch))
						}
					}
					out.d[out.idx(n, y, xx, ch)] = m
				}
			}
		}
	}
	return out
}

// naiveGAP: [B, H, W, C] → [B][C] spatial mean.
func naiveGAP(x map4) [][]float64 {
	out := make([][]float64, x.b)
	for n := range x.b {
		out[n] = make([]float64, x.c)
		for y := range x.h {
			for xx := range x.w {
				for ch := range x.c {
					out[n][ch] += x.at(n, y, xx, ch) / float64(x.h*x.w)
				}
			}
		}
	}
	return out
}

// naiveLinear: y = x·W + b, W [In, Out].
func naiveLinear(x [][]float64, w, b []float64, out int) [][]float64 {
	y := make([][]float64, len(x))
	for n, row := range x {
		y[n] = make([]float64, out)
		for o := range out {
			s := b[o]
			for i, v := range row {
				s += v * w[i*out+o]
			}
			y[n][o] = s
		}
	}
	return y
}

// varReader reads variables of a context as float64.
type varReader struct {
	t   *testing.T
	ctx *context.Context
	// override replaces variables, keyed by scope + "/" + name (for finite differences).
	override map[string][]float64
}

func (r varReader) get(scope, name string) []float64 {
	r.t.Helper()
	if v, ok := r.override[scope+"/"+name]; ok {
		return v
	}
	v := r.ctx.GetVariableByScopeAndName(scope, name)
	if v == nil {
		r.t.Fatalf("no variable %s/%s", scope, name)
	}
	f := tensors.MustCopyFlatData[float32](v.MustValue())
	out := make([]float64, len(f))
	for i, x := range f {
		out[i] = float64(x)
	}
	return out
}

func (r varReader) exists(scope, name string) bool {
	return r.ctx.GetVariableByScopeAndName(scope, name) != nil
}

// conv applies the conv of scope with kernel k and the given stride/padding.
func (r varReader) conv(x map4, scope string, k, stride, pad int) map4 {
	r.t.Helper()
	return r.groupConv(x, scope, k, stride, pad, 1)
}

// groupConv is conv with channel groups.
func (r varReader) groupConv(x map4, scope string, k, stride, pad, groups int) map4 {
	r.t.Helper()
	v := r.ctx.GetVariableByScopeAndName(scope, "weights")
	if v == nil {
		r.t.Fatalf("no conv %s", scope)
	}
	cout := v.Shape().Dim(-1)
	var bias []float64
	if r.exists(scope, "biases") {
		bias = r.get(scope, "biases")
	}
	return naiveGroupConv(x, r.get(scope, "weights"), k, cout, bias, stride, pad, 1, groups)
}

func (r varReader) bn(x map4, scope string, train bool) map4 {
	return naiveBN(x, r.get(scope, "scale"), r.get(scope, "offset"),
		r.get(scope, "running_mean"), r.get(scope, "running_var"), train)
}

func (r varReader) linear(x [][]float64, scope string) [][]float64 {
	b := r.get(scope, "biases")
	return naiveLinear(x, r.get(scope, "weights"), b, len(b))
}

// naiveFeatures mirrors backbone.Features in float64.
type naiveFeatures struct {
	logits       [][]float64
	pooled       [][]float64
	stages       []map4
	preactStages []map4
	taps         []map4
}

// naiveModel runs the reference of cfg's family.
func naiveModel(t *testing.T, r varReader, cfg Config, x map4, train bool) naiveFeatures {
	t.Helper()
	switch cfg := cfg.(type) {
	case ResNetConfig:
		return naiveResNet(r, cfg, x, train)
	case WRNConfig:
		return naiveWRN(r, cfg, x, train)
	case VGGConfig:
		return naiveVGG(r, cfg, x, train)
	case MobileNetV2Config:
		return naiveMobileNetV2(r, cfg, x, train)
	case BottleneckResNetConfig:
		return naiveBottleneckResNet(r, cfg, x, train)
	case ShuffleNetV1Config:
		return naiveShuffleNetV1(r, cfg, x, train)
	case ShuffleNetV2Config:
		return naiveShuffleNetV2(r, cfg, x, train)
	}
	t.Fatalf("no reference for %T", cfg)
	return naiveFeatures{}
}

func naiveResNet(r varReader, c ResNetConfig, x map4, train bool) naiveFeatures {
	var f naiveFeatures
	x = naiveRelu(r.bn(r.conv(x, "/stem/conv", 3, 1, 1), "/stem/bn", train))
	f.stages = append(f.stages, x)
	f.preactStages = append(f.preactStages, x)
	n := (c.Depth - 2) / 6
	for s := 1; s <= 3; s++ {
		var pre map4
		for b := range n {
			stride := 1
			if b == 0 && s > 1 {
				stride = 2
			}
			sc := "/stage_" + strconv.Itoa(s) + "/block_" + strconv.Itoa(b)
			inner := naiveRelu(r.bn(r.conv(x, sc+"/conv_1", 3, stride, 1), sc+"/bn_1", train))
			h := r.bn(r.conv(inner, sc+"/conv_2", 3, 1, 1), sc+"/bn_2", train)
			short := x
			if r.exists(sc+"/shortcut/conv", "weights") {
				short = r.bn(r.conv(x, sc+"/shortcut/conv", 1, stride, 0), sc+"/shortcut/bn", train)
			}
			pre = naiveAdd(h, short)
			x = naiveRelu(pre)
			if s == 3 {
				f.taps = append(f.taps, inner, x)
			}
		}
		if s == 2 && n == 1 {
			f.taps = append(f.taps, x)
		}
		f.stages = append(f.stages, x)
		f.preactStages = append(f.preactStages, pre)
	}
	f.pooled = naiveGAP(x)
	f.logits = r.linear(f.pooled, "/fc")
	return f
}

func naiveWRN(r varReader, c WRNConfig, x map4, train bool) naiveFeatures {
	var f naiveFeatures
	x = r.conv(x, "/stem/conv", 3, 1, 1)
	f.stages = append(f.stages, x)
	f.preactStages = append(f.preactStages, x)
	n := (c.Depth - 4) / 6
	var a1, a2 map4
	for s := 1; s <= 3; s++ {
		for b := range n {
			stride := 1
			if b == 0 && s > 1 {
				stride = 2
			}
			sc := "/stage_" + strconv.Itoa(s) + "/block_" + strconv.Itoa(b)
			bn1 := r.bn(x, sc+"/bn_1", train)
			if b == 0 && s > 1 {
				f.preactStages = append(f.preactStages, bn1)
			}
			a1 = naiveRelu(bn1)
			a2 = naiveRelu(r.bn(r.conv(a1, sc+"/conv_1", 3, stride, 1), sc+"/bn_2", train))
			h := r.conv(a2, sc+"/conv_2", 3, 1, 1)
			short := x
			if r.exists(sc+"/shortcut/conv", "weights") {
				short = r.conv(a1, sc+"/shortcut/conv", 1, stride, 0)
			}
			x = naiveAdd(h, short)
		}
		f.stages = append(f.stages, x)
	}
	final := r.bn(x, "/final_bn", train)
	f.preactStages = append(f.preactStages, final)
	out := naiveRelu(final)
	f.taps = []map4{a1, a2, out}
	f.pooled = naiveGAP(out)
	f.logits = r.linear(f.pooled, "/fc")
	return f
}

func naiveVGG(r varReader, c VGGConfig, x map4, train bool) naiveFeatures {
	var f naiveFeatures
	h := x.h
	for gi, widths := range c.Groups {
		for j := range widths {
			sc := "/group_" + strconv.Itoa(gi)
			x = r.bn(r.conv(x, sc+"/conv_"+strconv.Itoa(j), 3, 1, 1), sc+"/bn_"+strconv.Itoa(j), train)
			if j < len(widths)-1 {
				x = naiveRelu(x)
			}
		}
		pre := x
		x = naiveRelu(x)
		f.stages = append(f.stages, x)
		if gi == 0 {
			f.preactStages = append(f.preactStages, x)
		} else {
			f.preactStages = append(f.preactStages, pre)
		}
		if gi <= 2 || (gi == 3 && h == 64) {
			x = naiveMaxPool2(x)
		}
	}
	f.taps = []map4{f.stages[2], f.stages[3], f.stages[4]}
	f.pooled = naiveGAP(x)
	f.logits = r.linear(f.pooled, "/fc")
	return f
}

func naiveMobileNetV2(r varReader, c MobileNetV2Config, x map4, train bool) naiveFeatures {
	var f naiveFeatures
	cbr := func(x map4, scope string, k, stride, pad, groups int) map4 {
		return r.bn(r.groupConv(x, scope+"/conv", k, stride, pad, groups), scope+"/bn", train)
	}
	x = naiveRelu(cbr(x, "/stem", 3, 2, 1, 1))
	f.stages = append(f.stages, x)
	rows := [7][4]int{{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}}
	var expanded, depthwise map4
	for s, row := range rows {
		out := int(float64(row[1]) * c.WidthMult)
		for b := range row[2] {
			stride := 1
			if b == 0 {
				stride = row[3]
			}
			sc := "/stage_" + strconv.Itoa(s) + "/block_" + strconv.Itoa(b)
			in := x
			expanded = naiveRelu(cbr(x, sc+"/expand", 1, 1, 0, 1))
			depthwise = naiveRelu(cbr(expanded, sc+"/depthwise", 3, stride, 1, expanded.c))
			x = cbr(depthwise, sc+"/project", 1, 1, 0, 1)
			if stride == 1 && in.c == out {
				x = naiveAdd(x, in)
			}
		}
		if s == 1 || s == 2 || s == 4 || s == 6 {
			f.stages = append(f.stages, x)
		}
	}
	f.preactStages = f.stages
	head := naiveRelu(cbr(x, "/head", 1, 1, 0, 1))
	f.taps = []map4{expanded, depthwise, head}
	f.pooled = naiveGAP(head)
	f.logits = r.linear(f.pooled, "/fc")
	return f
}

// naiveChannelShuffle: PyTorch's x.view(N, g, C/g, H, W).permute(0, 2, 1, 3, 4): output channel
// i·g + j is input channel j·(C/g) + i.
func naiveChannelShuffle(x map4, g int) map4 {
	out := newMap4(x.b, x.h, x.w, x.c)
	per := x.c / g
	for n := range x.b {
		for y := range x.h {
			for xx := range x.w {
				for i := range per {
					for j := range g {
						out.d[out.idx(n, y, xx, i*g+j)] = x.at(n, y, xx, j*per+i)
					}
				}
			}
		}
	}
	return out
}

// naiveConcat concatenates maps along the channels.
func naiveConcat(ms ...map4) map4 {
	c := 0
	for _, m := range ms {
		c += m.c
	}
	out := newMap4(ms[0].b, ms[0].h, ms[0].w, c)
	for n := range out.b {
		for y := range out.h {
			for xx := range out.w {
				off := 0
				for _, m := range ms {
					for ch := range m.c {
						out.d[out.idx(n, y, xx, off+ch)] = m.at(n, y, xx, ch)
					}
					off += m.c
				}
			}
		}
	}
	return out
}

// naiveChannels returns channels lo … hi−1 of x.
func naiveChannels(x map4, lo, hi int) map4 {
	out := newMap4(x.b, x.h, x.w, hi-lo)
	for n := range x.b {
		for y := range x.h {
			for xx := range x.w {
				for ch := lo; ch < hi; ch++ {
					out.d[out.idx(n, y, xx, ch-lo)] = x.at(n, y, xx, ch)
				}
			}
		}
	}
	return out
}

// naiveAvgPool3s2: PyTorch's AvgPool2d(3, stride=2, padding=1) with count_include_pad=True: every
// window sum, padding included as zeros, divided by 9.
func naiveAvgPool3s2(x map4) map4 {
	oh, ow := (x.h+2-3)/2+1, (x.w+2-3)/2+1
	out := newMap4(x.b, oh, ow, x.c)
	for n := range x.b {
		for y := range oh {
			for xx := range ow {
				for ch := range x.c {
					s := 0.0
					for dy := -1; dy <= 1; dy++ {
						for dx := -1; dx <= 1; dx++ {
							iy, ix := 2*y+dy, 2*xx+dx
							if iy >= 0 && iy < x.h && ix >= 0 && ix < x.w {
								s += x.at(n, iy, ix, ch)
							}
						}
					}
					out.d[out.idx(n, y, xx, ch)] = s / 9
				}
			}
		}
	}
	return out
}

func naiveBottleneckResNet(r varReader, c BottleneckResNetConfig, x map4, train bool) naiveFeatures {
	var f naiveFeatures
	x = naiveRelu(r.bn(r.conv(x, "/stem/conv", 3, 1, 1), "/stem/bn", train))
	f.stages = append(f.stages, x)
	f.preactStages = append(f.preactStages, x)
	for s := 1; s <= 4; s++ {
		var pre map4
		for b := range c.Blocks[s-1] {
			stride := 1
			if b == 0 && s > 1 {
				stride = 2
			}
			sc := "/stage_" + strconv.Itoa(s) + "/block_" + strconv.Itoa(b)
			r1 := naiveRelu(r.bn(r.conv(x, sc+"/conv_1", 1, 1, 0), sc+"/bn_1", train))
			r2 := naiveRelu(r.bn(r.conv(r1, sc+"/conv_2", 3, stride, 1), sc+"/bn_2", train))
			h := r.bn(r.conv(r2, sc+"/conv_3", 1, 1, 0), sc+"/bn_3", train)
			short := x
			if r.exists(sc+"/shortcut/conv", "weights") {
				short = r.bn(r.conv(x, sc+"/shortcut/conv", 1, stride, 0), sc+"/shortcut/bn", train)
			}
			pre = naiveAdd(h, short)
			x = naiveRelu(pre)
			if s == 4 {
				f.taps = append(f.taps, r1, r2, x)
			}
		}
		f.stages = append(f.stages, x)
		f.preactStages = append(f.preactStages, pre)
	}
	f.pooled = naiveGAP(x)
	f.logits = r.linear(f.pooled, "/fc")
	return f
}

func naiveShuffleNetV1(r varReader, c ShuffleNetV1Config, x map4, train bool) naiveFeatures {
	var f naiveFeatures
	x = naiveRelu(r.bn(r.conv(x, "/stem/conv", 1, 1, 0), "/stem/bn", train))
	f.stages = append(f.stages, x)
	f.preactStages = append(f.preactStages, x)
	in := c.Stem
	for s := range 3 {
		var pre map4
		for b := range c.Blocks[s] {
			// The reference's Bottleneck(in_planes, out_planes − cat_planes, stride, groups).
			out, stride, g := c.Outputs[s], 1, c.Groups
			if b == 0 {
				out, stride = out-in, 2
			}
			if in == c.Stem {
				g = 1
			}
			mid := out / 4
			sc := "/stage_" + strconv.Itoa(s+1) + "/block_" + strconv.Itoa(b)
			r1 := naiveRelu(r.bn(r.groupConv(x, sc+"/conv_1", 1, 1, 0, g), sc+"/bn_1", train))
			r2 := naiveRelu(r.bn(r.groupConv(naiveChannelShuffle(r1, g), sc+"/conv_2", 3, stride, 1, mid), sc+"/bn_2", train))
			h := r.bn(r.groupConv(r2, sc+"/conv_3", 1, 1, 0, c.Groups), sc+"/bn_3", train)
			if stride == 2 {
				pre = naiveConcat(h, naiveAvgPool3s2(x))
			} else {
				pre = naiveAdd(h, x)
			}
			x = naiveRelu(pre)
			in = c.Outputs[s]
			if s == 2 {
				f.taps = append(f.taps, r1, r2, x)
			}
		}
		f.stages = append(f.stages, x)
		f.preactStages = append(f.preactStages, pre)
	}
	f.pooled = naiveGAP(x)
	f.logits = r.linear(f.pooled, "/fc")
	return f
}

func naiveShuffleNetV2(r varReader, c ShuffleNetV2Config, x map4, train bool) naiveFeatures {
	var f naiveFeatures
	cbr := func(x map4, scope string, k, stride, pad, groups int) map4 {
		return r.bn(r.groupConv(x, scope+"/conv", k, stride, pad, groups), scope+"/bn", train)
	}
	x = naiveRelu(cbr(x, "/stem", 1, 1, 0, 1))
	f.stages = append(f.stages, x)
	f.preactStages = append(f.preactStages, x)
	var taps []map4
	for s := range 3 {
		sc := "/stage_" + strconv.Itoa(s+1) + "/block_"
		cv := func(x map4, blk, j, k, stride, groups int) map4 {
			p := sc + strconv.Itoa(blk)
			return r.bn(r.groupConv(x, p+"/conv_"+strconv.Itoa(j), k, stride, k/2, groups), p+"/bn_"+strconv.Itoa(j), train)
		}
		mid := c.Widths[s] / 2
		left := naiveRelu(cv(cv(x, 0, 1, 3, 2, x.c), 0, 2, 1, 1, 1))
		r3 := naiveRelu(cv(x, 0, 3, 1, 1, 1))
		right := naiveRelu(cv(cv(r3, 0, 4, 3, 2, mid), 0, 5, 1, 1, 1))
		x = naiveChannelShuffle(naiveConcat(left, right), 2)
		taps = []map4{left, r3, right}
		var pre map4
		for b := 1; b <= c.Blocks[s]; b++ {
			x1, x2 := naiveChannels(x, 0, x.c/2), naiveChannels(x, x.c/2, x.c)
			r1 := naiveRelu(cv(x2, b, 1, 1, 1, 1))
			p := cv(cv(r1, b, 2, 3, 1, r1.c), b, 3, 1, 1, 1)
			pre = naiveConcat(x1, p)
			x = naiveChannelShuffle(naiveConcat(x1, naiveRelu(p)), 2)
			taps = append(taps, r1, naiveRelu(p))
		}
		f.stages = append(f.stages, x)
		f.preactStages = append(f.preactStages, pre)
	}
	head := naiveRelu(cbr(x, "/head", 1, 1, 0, 1))
	f.taps = append(taps, head)
	f.pooled = naiveGAP(head)
	f.logits = r.linear(f.pooled, "/fc")
	return f
}
