package eval

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// BenchmarkKNN measures the full weighted kNN (similarities, selection of k=200 and voting for the
// two default settings) at Fashion-MNIST scale: a 60000-vector bank and 10000 queries.
func BenchmarkKNN(b *testing.B) {
	for _, d := range []int{64, 192} {
		b.Run(fmt.Sprintf("N60000xQ10000xD%d", d), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, uint64(d)))
			centres := randomCentres(r, 10, d)
			bank := clustered(r, centres, 60000, 3)
			queries := clustered(r, centres, 10000, 3)
			b.ResetTimer()
			for b.Loop() {
				if _, err := KNN(testutil.Backend(), bank, queries, KNNOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
