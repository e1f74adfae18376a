package main

import (
	"strings"
	"testing"

	"github.com/immkit/immkit/internal/cli"
)

func TestHelpListsCommands(t *testing.T) {
	out, _, code := cli.Run(newRootCmd, "--help")
	if code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	for _, name := range []string{"gen", "ingest", "inspect", "tokenizer", "audio", "shard", "verify", "export", "encode", "version"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			// "  name   One-line description": a name followed by a description.
			if len(f) >= 2 && f[0] == name {
				found = true
			}
		}
		if !found {
			t.Errorf("immdata --help does not list %q with a description:\n%s", name, out)
		}
	}
	if !strings.Contains(out, "Examples:") {
		t.Errorf("immdata --help has no example line:\n%s", out)
	}
}

func TestEverySubcommandHasExample(t *testing.T) {
	root := newRootCmd(&cli.Global{})
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if strings.TrimSpace(c.Example) == "" && !c.HasSubCommands() {
			t.Errorf("immdata %s has no Example", c.Name())
		}
		if c.Short == "" {
			t.Errorf("immdata %s has no one-line description", c.Name())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	if _, errOut, code := cli.Run(newRootCmd, "--log-format", "xml", "version"); code != 2 || !strings.Contains(errOut, "--log-format") {
		t.Errorf("bad --log-format: exit %d, stderr %q; want exit 2 naming the flag", code, errOut)
	}
	if _, _, code := cli.Run(newRootCmd, "no-such-command"); code != 2 {
		t.Errorf("unknown command exited %d, want 2", code)
	}
	if _, _, code := cli.Run(newRootCmd, "version", "--no-such-flag"); code != 2 {
		t.Errorf("unknown flag exited %d, want 2", code)
	}
	out, _, code := cli.Run(newRootCmd, "version")
	if code != 0 || !strings.HasPrefix(out, "immdata ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}
