package imm_test

import (
	"fmt"

	"github.com/immkit/immkit/imm"
)

// The default objective: OT-FM, Euler-FM, k = 12. At t = 0.5, eta(t) = 1 and r(s,t) is
// eta^{-1}(1 - 160/2^12); the weight is 0.5 sigmoid(4) * 2/(t(1-t)) * a_t^2/(a_t^2+s_t^2).
func ExampleConfig() {
	c := imm.DefaultConfig()
	skip, out := c.Skip(0.25, 0.5)
	fmt.Printf("r(0, 0.5) = %.6f\n", c.R(0, 0.5))
	fmt.Printf("w(0, 0.5) = %.4f\n", c.Weight(0, 0.5))
	fmt.Printf("c_skip = %g, c_out = %g\n", skip, out)
	// Output:
	// r(0, 0.5) = 0.490040
	// w(0, 0.5) = 1.9640
	// c_skip = 1, c_out = -0.125
}
