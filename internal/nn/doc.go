// Package nn holds the small layer building blocks shared by ifa models and heads that GoMLX v0.26
// lacks or gets wrong for ifa's purposes (batch normalisation whose gradient flows through the batch
// statistics, with running averages for evaluation).
package nn
