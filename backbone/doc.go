// Package backbone defines the contract every ifa encoder returns (Features: logits, the pooled
// final feature, stage feature maps and the ordered list of layer taps) and how callers select
// layers from it (LayerSelect: all, last n, explicit, negative indices from the end; TapChoice: the
// --taps choice between the block outputs and the last taps, for students and teachers alike).
//
// It must not import any concrete model package (cnn, vit) nor any method package (ssl, distill).
package backbone
