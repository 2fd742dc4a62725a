// Package cnn owns the CIFAR-style CNN model zoo of RepDistiller (METHODS.md §4.1): the CIFAR
// ResNets (resnet8 … resnet110, resnet8x4, resnet32x4), the Wide ResNets (wrn_16_1, wrn_16_2,
// wrn_40_1, wrn_40_2), the batch-norm VGGs (vgg8 … vgg19), MobileNetV2 (the reference's
// "mobile_half"), ResNet50 with a CIFAR stem (resnet50) and the CIFAR ShuffleNets (shufflev1,
// shufflev2), channels-last (NHWC) float32, with the reference initialisation and exactly the
// reference's trainable parameter counts.
//
// Every model is a validated, typed Config (ResNetConfig, WRNConfig, VGGConfig, MobileNetV2Config,
// BottleneckResNetConfig, ShuffleNetV1Config, ShuffleNetV2Config) wrapped in a named
// Spec (Names, Get, NewSpec). Spec.Build builds it on a GoMLX context and returns backbone.Features:
// Logits, Pooled (the final feature), Stages (RepDistiller's is_feat maps without the pooled vector),
// PreactStages (its preact=True variant), Taps (the last stage's ReLU outputs IFACD uses, METHODS.md
// §2.2, in forward order) and TapVectors (their global average pools). Spec.Describe reports the
// shapes and parameter count for an input size without running anything, for sizing heads.
//
// Variable scope names (stem/conv, stage_1/block_0/conv_1, group_0/bn_0, fc, …) are the checkpoint
// format and are pinned by testdata/scopes.golden.
//
// Inputs of any size and channel count work where the pools allow: 28×28×1 (Fashion-MNIST) gives
// final maps of 7×7 for ResNets and WRNs, 3×3 for VGGs (their max-pools floor odd sizes), 2×2 for
// MobileNetV2 and 4×4 for ResNet50 and the ShuffleNets; VGGs need at least 8×8 inputs.
//
// It must not import ssl, distill, fit or eval.
package cnn
