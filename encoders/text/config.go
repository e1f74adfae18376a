package text

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FileConfig is the small JSON file saved beside a trained `.tiktoken` rank file: what is
// needed, besides the ranks, to rebuild the [Encoding].
type FileConfig struct {
	Name      string           `json:"name"`
	Pattern   string           `json:"pattern"`   // cl100k, o200k or gpt2
	RankFile  string           `json:"rank_file"` // relative to the config file's directory
	SHA256    string           `json:"rank_file_sha256"`
	Special   map[string]int32 `json:"special_tokens"`
	VocabSize int              `json:"vocab_size"`
}

// ConfigPath returns the config file name that belongs to a rank file: x.tiktoken -> x.json.
func ConfigPath(rankFile string) string {
	return strings.TrimSuffix(rankFile, filepath.Ext(rankFile)) + ".json"
}

// Save writes e's ranks to rankFile (`.tiktoken`) and its config to [ConfigPath](rankFile),
// each through a temporary file renamed into place.
func (e *Encoding) Save(rankFile string) error {
	var rb bytes.Buffer
	if err := WriteTiktoken(&rb, e.Ranks()); err != nil {
		return err
	}
	sum := sha256.Sum256(rb.Bytes())
	cfg := FileConfig{Name: e.name, Pattern: e.pattern.String(), RankFile: filepath.Base(rankFile),
		SHA256: hex.EncodeToString(sum[:]), Special: e.Special(), VocabSize: e.VocabSize()}
	cb, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(rankFile, rb.Bytes()); err != nil {
		return err
	}
	return writeAtomic(ConfigPath(rankFile), append(cb, '\n'))
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("text: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(fmt.Errorf("text: %w", err), os.Remove(tmp))
	}
	return nil
}

// ErrRankHash is returned when a rank file does not have the hash its config records.
var ErrRankHash = errors.New("text: rank file sha256 does not match its config")

// LoadConfig builds the Encoding described by a config file written by [Encoding.Save].
func LoadConfig(path string) (*Encoding, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("text: %w", err)
	}
	var cfg FileConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("text: config %s: %w", path, err)
	}
	pat, err := ParsePattern(cfg.Pattern)
	if err != nil {
		return nil, fmt.Errorf("text: config %s: %w", path, err)
	}
	rp := cfg.RankFile
	if !filepath.IsAbs(rp) {
		rp = filepath.Join(filepath.Dir(path), rp)
	}
	rb, err := os.ReadFile(rp)
	if err != nil {
		return nil, fmt.Errorf("text: config %s: %w", path, err)
	}
	if cfg.SHA256 != "" {
		sum := sha256.Sum256(rb)
		if got := hex.EncodeToString(sum[:]); got != cfg.SHA256 {
			return nil, fmt.Errorf("%w: %s has %s, config %s says %s", ErrRankHash, rp, got, path, cfg.SHA256)
		}
	}
	ranks, err := ReadTiktoken(bytes.NewReader(rb))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rp, err)
	}
	return New(Config{Name: cfg.Name, Pattern: pat, Ranks: ranks, Special: cfg.Special})
}

// FileSHA256 returns the hex sha256 of a file, as recorded in manifests.
func FileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("text: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
