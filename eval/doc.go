// Package eval owns representation evaluation: weighted cosine kNN with a train-set feature bank,
// linear probing on frozen features, and top-1/top-5 accuracy.
//
// Extract runs an encoder in evaluation mode over a data.Loader and returns host features
// (FeatureSet); KNN and LinearProbe evaluate such features. Heavy products run as GoMLX graphs on
// the given backend; neighbour selection, voting and scoring run in Go. Every ranking breaks ties
// towards the lower index, so results are deterministic.
//
// It must not import models (vit, cnn) or methods (ssl, distill): encoders come in as functions.
package eval
