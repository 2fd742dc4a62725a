// Package distill owns knowledge-distillation losses and methods: KD, IFACD, CRD, FitNets (hint),
// AT, SP, CC, VID, RKD, PKT and NST, one file each, and the registry that names them.
//
// Each method file holds the pure loss on graph nodes (ATLoss, SPLoss, CCLoss, VIDLoss, RKDLoss,
// PKTLoss, NSTLoss, HintLoss, CRDNCELoss, ...), tested directly against float64 references, and
// a Method (see method.go) that selects the student and teacher features, builds the method's
// heads under its own context scope and returns the unweighted term of
// L = γ·CE + α·KD + β·L_method. Methods needing host-side inputs (CRD's contrast indices) provide
// them through HostInputs. Tunables are context parameters listed by Params.
//
// It must not import cnn or vit: teachers and students are any encoder returning backbone.Features.
package distill
