package audio

import "math"

// logTableBits is the number of mantissa bits that index the log tables.
const logTableBits = 10

// logTable[i] = {1/c_i, ln c_i} for c_i = 1 + (i+0.5)/2^logTableBits, the centre of the i-th
// mantissa interval.
var logTable = func() (t [1 << logTableBits][2]float64) {
	for i := range t {
		c := 1 + (float64(i)+0.5)/(1<<logTableBits)
		t[i] = [2]float64{1 / c, math.Log(c)}
	}
	return t
}()

// fastLn is math.Log for positive, finite, normal x with absolute error below 1e-12:
// x = 2^e m, m in [1, 2); ln x = e ln 2 + ln c + ln(1 + r), r = m/c - 1, |r| < 2^-11,
// with ln(1+r) by its Taylor series to r^4. Other inputs go to math.Log.
func fastLn(x float64) float64 {
	b := math.Float64bits(x)
	e := int(b>>52) - 1023
	if e <= -1023 || e >= 1024 || int64(b) < 0 {
		return math.Log(x)
	}
	idx := (b >> (52 - logTableBits)) & (1<<logTableBits - 1)
	m := math.Float64frombits(b&(1<<52-1) | 1023<<52)
	t := &logTable[idx]
	r := m*t[0] - 1
	// ln(1+r) = r - r^2/2 + r^3/3 - r^4/4
	p := r * (1 - r*(0.5-r*(1.0/3-r*0.25)))
	return float64(e)*math.Ln2 + t[1] + p
}
