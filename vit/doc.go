// Package vit owns the Vision Transformer encoder (CLS token, learned position embeddings,
// pre-norm blocks) that returns the residual stream after every block, so that each layer can be a
// contrastive view (IFACLR), plus its named configurations.
//
// It must not import ssl, distill, fit or eval.
package vit
