package eval

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func zeroShape(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }

// probeState is the linear classifier and its momentum buffers, as backend tensors.
type probeState struct {
	w, b, vw, vb *tensors.Tensor // [D, C], [C], [D, C], [C]
}

func (s *probeState) finalize() {
	for _, t := range []*tensors.Tensor{s.w, s.b, s.vw, s.vb} {
		_ = t.FinalizeAll()
	}
}

// probeStep is one SGD-with-momentum step of softmax cross-entropy on a batch, compiled once.
type probeStep struct {
	exec *graph.Exec
}

// ProbeStepGraph builds one training step of the linear probe (exported for tests and reuse):
//
//	logits = x·W + b                          x: [B, D], W: [D, C], b: [C], labels: [B] int32
//	loss   = mean_i (logsumexp(logits_i) − logits_i[y_i])
//	gW     = xᵀ·(softmax(logits) − onehot(y)) / B + wd·W,  gb = Σ_i (softmax − onehot)_i / B
//	vW ← μ·vW + gW;  W ← W − lr·vW   (and likewise b, without weight decay)
//
// The gradient is written in its closed form rather than by autodiff: one plain [D, B]·[B, C]
// product, where GoMLX's generic Dot gradient costs tens of times more on the CPU backends.
// It returns W', b', vW', vb' and the loss (scalar), all float32.
func ProbeStepGraph(w, b, vw, vb, x, labels, lr *graph.Node, momentum, weightDecay float64) (nw, nb, nvw, nvb, loss *graph.Node) {
	logits := graph.Add(graph.Dot(x, w), graph.ExpandLeftToRank(b, 2))
	logp := graph.LogSoftmax(logits, -1)
	c := w.Shape().Dim(1)
	onehot := graph.OneHot(labels, c, logits.DType())
	loss = graph.Neg(graph.ReduceAllMean(graph.ReduceSum(graph.Mul(onehot, logp), -1)))
	bsz := float64(x.Shape().Dim(0))
	delta := graph.DivScalar(graph.Sub(graph.Exp(logp), onehot), bsz) // [B, C]
	gw := graph.DotGeneral(x, []int{0}, nil, delta, []int{0}, nil)    // [D, C]
	gb := graph.ReduceSum(delta, 0)
	if weightDecay > 0 {
		gw = graph.Add(gw, graph.MulScalar(w, weightDecay))
	}
	nvw = graph.Add(graph.MulScalar(vw, momentum), gw)
	nvb = graph.Add(graph.MulScalar(vb, momentum), gb)
	nw = graph.Sub(w, graph.Mul(lr, nvw))
	nb = graph.Sub(b, graph.Mul(lr, nvb))
	return nw, nb, nvw, nvb, loss
}

func newProbeStep(backend backends.Backend, momentum, weightDecay float64) (*probeStep, error) {
	exec, err := graph.NewExec(backend, func(inputs []*graph.Node) []*graph.Node {
		nw, nb, nvw, nvb, loss := ProbeStepGraph(inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], inputs[5], inputs[6],
			momentum, weightDecay)
		return []*graph.Node{nw, nb, nvw, nvb, loss}
	})
	if err != nil {
		return nil, fmt.Errorf("eval: linear probe: step graph: %w", err)
	}
	return &probeStep{exec: exec}, nil
}

// run applies one step to s (replacing its tensors) on the batch x [batch, d], y [batch] and
// returns the batch loss.
func (p *probeStep) run(s *probeState, x []float32, y []int32, batch, d int, lr float64) (float64, error) {
	xt := tensors.FromFlatDataAndDimensions(x, batch, d)
	yt := tensors.FromFlatDataAndDimensions(y, batch)
	defer func() {
		_ = xt.FinalizeAll()
		_ = yt.FinalizeAll()
	}()
	out, err := p.exec.Exec(s.w, s.b, s.vw, s.vb, xt, yt, float32(lr))
	if err != nil {
		return 0, err
	}
	s.finalize()
	s.w, s.b, s.vw, s.vb = out[0], out[1], out[2], out[3]
	loss, err := tensors.CopyFlatData[float32](out[4])
	_ = out[4].FinalizeAll()
	if err != nil {
		return 0, err
	}
	return float64(loss[0]), nil
}
