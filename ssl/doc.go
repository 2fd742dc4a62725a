// Package ssl is the shared contrastive core of ifa: SupCon (all/one anchors, labels or not,
// multi-positive), NT-Xent, the "L_in" variant, layer-wise view assembly and the projector and
// rescaler heads used by both IFACLR and IFACD.
//
// Loss functions are pure graph math: they take nodes and plain options, never a context, and
// never log. The package must not import cnn or vit: it works on backbone.Features.
package ssl
