// Package eval owns representation evaluation: weighted cosine kNN with a train-set feature bank,
// linear probing on frozen features, and top-1/top-5 accuracy.
package eval
