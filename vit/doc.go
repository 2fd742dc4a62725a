// Package vit owns the Vision Transformer encoder (CLS token, learned position embeddings,
// pre-norm blocks) that returns the residual stream after every block, so that each layer can be a
// contrastive view (IFACLR), plus its named configurations.
//
// Get returns a named Config ("nano", "micro", "ti", "s", "b", optionally with a patch suffix such
// as "ti_4"); New validates it; Model.Features builds the graph on a GoMLX context and returns a
// backbone.Features. Variable scopes (patch_embed, cls_token, pos_embed, block_NN/attn/qkv, …,
// norm_layer, head) are the checkpoint format and are pinned by a golden test.
//
// It also owns the MLP-Mixer (MixerConfig, GetMixer, NewMixer; "nano", "micro", "s", "b"), whose
// per-layer outputs follow the same contract: Taps are every block's token grid [B, N, D] and
// TapVectors one vector per block. TokenGrid turns a ViT or Mixer tap into a channels-last map
// [B, H/P, W/P, D] for map-based heads.
//
// Initialisation: linear weights, the CLS token and the position embeddings are drawn from a
// normal with std 0.02 truncated at ±2σ; biases and LayerNorm offsets start at 0, LayerNorm gains
// at 1.
//
// It must not import ssl, distill, fit or eval.
package vit
