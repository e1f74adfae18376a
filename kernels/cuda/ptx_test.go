package cuda

import (
	"regexp"
	"strings"
	"testing"
)

// TestPTXEntries checks the embedded PTX without a GPU: it is PTX text for compute_80,
// every kernel the launcher knows is an .entry, no .entry is unknown, and each entry has
// the number of parameters the launcher passes.
func TestPTXEntries(t *testing.T) {
	text := string(ptx)
	for _, want := range []string{".version ", ".target sm_80", ".address_size 64"} {
		if !strings.Contains(text, want) {
			t.Fatalf("embedded PTX lacks %q", want)
		}
	}
	entry := regexp.MustCompile(`(?m)^\.visible \.entry (\w+)\(\s*$`)
	found := map[string]int{}
	for _, loc := range entry.FindAllStringSubmatchIndex(text, -1) {
		name := text[loc[2]:loc[3]]
		rest := text[loc[1]:]
		end := strings.Index(rest, ")")
		if end < 0 {
			t.Fatalf("entry %s: no closing parenthesis", name)
		}
		found[name] = strings.Count(rest[:end], ".param ")
	}
	for name, n := range kernelParams {
		got, ok := found[name]
		switch {
		case !ok:
			t.Errorf("kernel %s is not an .entry of the PTX", name)
		case got != n:
			t.Errorf("kernel %s has %d parameters in the PTX, the launcher passes %d", name, got, n)
		}
	}
	for name := range found {
		if _, ok := kernelParams[name]; !ok {
			t.Errorf("PTX entry %s is unknown to the launcher", name)
		}
	}
	if len(found) == 0 {
		t.Fatal("no .entry in the embedded PTX")
	}
}
