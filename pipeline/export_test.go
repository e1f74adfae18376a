package pipeline

// SetForceTerminal makes every Progress writer count as a terminal (the mpb display).
func SetForceTerminal(b bool) { forceTerminal = b }
