// Package interop maps ifa's models to and from PyTorch state dicts: every variable of a zoo CNN
// or a ViT gets the key and layout its PyTorch twin uses, so that a state dict read by torchio
// becomes ifa variables (Import) and ifa variables become a state dict (Export).
//
// Naming conventions:
//   - CNNs use RepDistiller's models/ (resnet.py, resnetv2.py, wrn.py, vgg.py, mobilenetv2.py,
//     ShuffleNetv1.py, ShuffleNetv2.py): conv1.weight,
//     bn1.running_mean, layer1.0.conv1.weight, layer2.0.downsample.0.weight, fc.weight; WRN
//     block1.layer.0.convShortcut.weight and the final bn1; VGG block0.0.weight (convolutions at
//     3j, BatchNorms at 3j+1 inside a block) and classifier.weight; MobileNetV2 conv1.{0,1},
//     blocks.S.B.conv.{0,1,3,4,6,7}, conv2.{0,1} and classifier.0; ResNet50 and the ShuffleNets
//     layerS.B.{convK,bnK}, ResNet50's shortcut.{0,1}, ShuffleNetV2's conv2/bn2 and the classifier
//     linear.
//   - The ViT uses timm's VisionTransformer names: patch_embed.proj.{weight,bias}, cls_token
//     [1, 1, D], pos_embed [1, T, D], blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2},
//     norm (ifa's shared per-layer LayerNorm, which timm applies to the final tokens: the CLS
//     vector is the same) and head.
//
// Layouts: convolution kernels are OIHW in PyTorch and HWIO in ifa; linear weights [out, in] and
// [in, out]; the ViT patch embedding is a Conv2d kernel [D, C, P, P] in PyTorch and a matrix
// [P·P·C, D] in ifa (rows in (row, column, channel) order). BatchNorm's weight/bias are ifa's
// scale/offset; num_batches_tracked has no ifa variable: Import accepts its absence (files
// written before PyTorch 0.4.1 have none) and reports its value, Export writes one.
package interop
