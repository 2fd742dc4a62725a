// Package distill owns knowledge-distillation losses and methods: KD, IFACD, CRD, FitNets (hint),
// AT, SP, CC, VID, RKD, PKT and NST, one file each, and the registry that names them.
//
// It must not import cnn or vit: teachers and students are any encoder returning backbone.Features.
package distill
