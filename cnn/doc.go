// Package cnn owns the CIFAR-style CNN model zoo (ResNet, WRN, VGG) with the reference
// initialisation and exact parameter counts, each returning backbone.Features.
//
// It must not import ssl, distill, fit or eval.
package cnn
