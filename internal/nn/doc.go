// Package nn holds the layers every ifa model and head shares, each defined once: Linear (PyTorch's
// initialisation by default; other initialisations and no bias as options), LayerNorm (variable
// names as an option, since they are part of the checkpoint format), Normalize, multi-head
// Attention, Conv2D, and batch normalisation whose gradient flows through the batch statistics, with
// running averages for evaluation and a frozen-scope switch (FrozenParam); and normal initialisation
// (NormalInit, NormalDraws) that calls the random generator once per weight.
package nn
