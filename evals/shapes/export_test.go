package shapes

// Test hooks.

// OutlineNames lists the restated outlines in detector order.
func OutlineNames() []string {
	var n []string
	for _, o := range outlines {
		n = append(n, o.name)
	}
	return n
}

// OutlineInside reports whether (u, v) lies inside the restated outline of a shape, and
// its area constant.
func OutlineInside(shape string, u, v float64) (inside bool, area float64) {
	for _, o := range outlines {
		if o.name == shape {
			return o.inside(u, v), o.area
		}
	}
	return false, 0
}

// OutlineCentroid returns the v of the restated outline's centroid.
func OutlineCentroid(shape string) float64 {
	for _, o := range outlines {
		if o.name == shape {
			return o.cy
		}
	}
	return 0
}
