// Package data owns dataset readers (Fashion-MNIST/MNIST IDX, CIFAR-10/100 binary, image folders),
// verified downloads, CPU augmentation (CIFAR crop+flip, SimCLR) with worker goroutines, multi-view
// batching and normalisation.
//
// It must not build graphs or know about models: it produces host tensors and Go slices.
package data
