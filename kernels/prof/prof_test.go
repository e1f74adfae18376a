package prof_test

import (
	"strings"
	"testing"

	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
	"github.com/immkit/immkit/kernels/prof"
)

// TestReport wraps the CPU device, runs ops through the wrapper and checks that each
// op's result is the wrapped device's and that the report counts them by op and shape
// and charges the host time between ops to this test function.
func TestReport(t *testing.T) {
	c := cpu.New[float32](1)
	syncs := 0
	p := prof.Wrap[float32](c, func() error { syncs++; return nil })
	var d kernels.Device[float32] = p
	x := d.Alloc(6)
	d.Write(x, []float32{1, 2, 3, 4, 5, 6})
	y := d.Alloc(6)
	p.Reset()
	for range 3 {
		d.Axpby(2, x, 0, y)
	}
	d.SumRows(d.Slice(y, 0, 3), x, 2, 3, 0)
	if s := d.Sum(x); s != 21 {
		t.Fatalf("Sum through the wrapper = %v, want 21", s)
	}
	got := make([]float32, 3)
	d.Read(got, y)
	if got[0] != 1+4 || got[2] != 3+6 { // SumRows of the 2x3 x into y[0:3]
		t.Fatalf("SumRows through the wrapper = %v", got)
	}
	var sb strings.Builder
	p.Report(&sb, 100)
	r := sb.String()
	for _, want := range []string{"3 x  Axpby <=8", "1 x  SumRows 2x3", "1 x  Sum <=8", "1 x  Read <=4", "prof_test.TestReport"} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r, "Write") {
		t.Errorf("Reset did not forget the Write before it:\n%s", r)
	}
	if syncs < 7 {
		t.Errorf("%d syncs for 7 timed ops and more", syncs)
	}
}
