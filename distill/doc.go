// Package distill owns knowledge-distillation losses and methods: KD, IFACD, CRD, FitNets (hint),
// AT, SP, CC, VID, RKD, PKT, NST and FSP, one file each, and the registry that names them.
//
// Each method file holds the pure loss on graph nodes (ATLoss, SPLoss, CCLoss, VIDLoss, RKDLoss,
// PKTLoss, NSTLoss, HintLoss, CRDNCELoss, ...), tested directly against float64 references, and
// a Method (see method.go: Name, Check, Loss) that selects the student and teacher features,
// builds the method's heads under its own context scope and returns the unweighted term of
// L = γ·CE + α·KD + β·L_method. Optional interfaces add the rest: Weighted (the default β),
// Tunable (the method's parameter table, read through param.Get), WithHeads (head parameter
// counts), WithHostInputs (CRD's contrast indices, made on the host) and Labeled (report labels).
// The registry is the map literal `methods`: a new method is one file and one line there.
//
// It must not import cnn or vit: teachers and students are any encoder returning backbone.Features.
package distill
