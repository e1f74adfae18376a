package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
)

// TestEncodeFlagsGray: --image-gray sets image.gray with or without a config file, and a
// config file's gray: true stands when the flag is not given.
func TestEncodeFlagsGray(t *testing.T) {
	dir := t.TempDir()
	plain, grey := filepath.Join(dir, "plain.yaml"), filepath.Join(dir, "grey.yaml")
	if err := os.WriteFile(plain, []byte("image: {size: 28}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(grey, []byte("image: {size: 28, gray: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--image-gray"}, true},
		{[]string{"--config", plain}, false},
		{[]string{"--config", plain, "--image-gray"}, true},
		{[]string{"--config", grey}, true},
		{[]string{"--config", grey, "--image-gray=false"}, false},
	} {
		var e encodeFlags
		f := pflag.NewFlagSet("encode", pflag.ContinueOnError)
		e.add(f)
		if err := f.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := e.config(f)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Image.Gray != c.want || cfg.Validate() != nil {
			t.Errorf("%q: gray %v (valid: %v), want %v", c.args, cfg.Image.Gray, cfg.Validate(), c.want)
		}
	}
}
