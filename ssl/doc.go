// Package ssl is the shared contrastive core of ifa: SupCon (all/one anchors, labels or not,
// multi-positive; with anchor-only extra views, SupConWithAnchors, for multi-crop), NT-Xent, the
// "L_in" variant, layer-wise view assembly and the projector and rescaler heads used by both
// IFACLR and IFACD; and the registry of the pretraining methods (registry.go).
//
// Loss functions are pure graph math: they take nodes and plain options, never a context, and
// never log. The package must not import cnn or vit: it works on backbone.Features.
//
// A typical IFACD contrastive term, with heads in their own scopes:
//
//	views, err := ssl.CDViews(student.Pooled, teacher.TapVectors, ssl.CDViewOptions{})
//	projT := ssl.SharedHead(ctx.In("proj_t"), ssl.IFACDHead(128))
//	stack := ssl.EmbedViews(views, func(v ssl.View) *graph.Node {
//		if v.Source == ssl.SourceStudent {
//			return ssl.Head(ctx.In("proj_s"), ssl.IFACDHead(128), v.Input)
//		}
//		r := ssl.Head(ctx.In(fmt.Sprintf("rescaler_%02d", v.Layer)), ssl.IFACDHead(dt), v.Input)
//		return projT(r)
//	}) // [B, 1+L, 128], L2-normalised
//	loss := ssl.SupCon(stack, nil, ssl.SupConOptions{Temperature: 0.07})
package ssl
