package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/immkit/immkit/internal/pqsafe"
	"github.com/immkit/immkit/internal/pqsafe/pqsafetest"
)

// parquetCandidates renders every candidate the Parquet source makes of path, one line
// each (key, text, label, meta, members with the sha256 of their bytes); a source-stage
// reject is returned as an error holding its detail.
func parquetCandidates(path string) ([]string, error) {
	o := DefaultSourceOptions()
	src, err := OpenSource(path, &o)
	if err != nil {
		return nil, err
	}
	var out []string
	var rej error
	ctx := context.Background()
	err = src.Units(ctx, func(u Unit) error {
		return u.Candidates(ctx, func(c *Candidate) error {
			if c.Reject != nil {
				e := fmt.Errorf("reject %s of %s: %s", c.Reject.Reason, c.Reject.Source, c.Reject.Detail)
				for _, sentinel := range []error{pqsafe.ErrPanic, pqsafe.ErrDamaged} { // for the counts
					if strings.Contains(c.Reject.Detail, sentinel.Error()) {
						e = fmt.Errorf("%w: %w", sentinel, e)
					}
				}
				rej = errors.Join(rej, e)
				return nil
			}
			line := fmt.Sprintf("%s|%s|%v|%v|%s", c.Key, c.Source, deref(c.Text), deref(c.Label), c.Meta)
			for _, m := range c.Members {
				line += fmt.Sprintf("|%s %s %x", m.Kind, m.Name, sha256.Sum256(m.Data))
			}
			out = append(out, line)
			return nil
		})
	})
	return out, errors.Join(err, rej)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestParquetSourceDamaged damages the Parquet fuzz seeds (an HF image struct column, a
// binary audio column, text, integer labels, meta) byte by byte and by cutting them:
// the source yields the undamaged file's candidates or bad_row rejects naming the file
// (and the row, where one row is bad), never a panic or a hang. The seeds are not
// compressed, so damaged values can also read as other values: counted, not failed. Before the source read through internal/pqsafe, a negative
// column chunk length in the image struct's footer crashed `immdata ingest` from a
// goroutine pqarrow starts for struct columns, out of reach of ScanParquet's recover.
func TestParquetSourceDamaged(t *testing.T) {
	for i, b := range parquetSeeds(t) {
		path := filepath.Join(t.TempDir(), "data.parquet")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		want, err := parquetCandidates(path)
		if err != nil || len(want) == 0 {
			t.Fatalf("seed %d undamaged: %d candidates, %v", i, len(want), err)
		}
		c := pqsafetest.Damage(t, path, b, pqsafetest.Stride(3), 10*time.Second, func() error {
			got, err := parquetCandidates(path)
			if err != nil {
				return err
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				return fmt.Errorf("%w: %q", pqsafetest.ErrWrongData, got)
			}
			return nil
		}, func(t testing.TB, what string, err error) {
			if !strings.Contains(err.Error(), "reject "+ReasonBadRow) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s: want a bad_row reject naming the file, got %v", what, err)
			}
		})
		t.Logf("seed %d, %d bytes: %s", i, len(b), c)
		if c.Errors == 0 {
			t.Errorf("seed %d: no damaged copy was rejected", i)
		}
	}
}

// TestScanParquetDamaged damages the same seeds under ScanParquet, the reader of
// `ingest --resume` (it scans the sha256 column of committed parts): every read returns
// the undamaged file's values or an error naming the file, never a panic or a hang.
// Before ScanParquet read through internal/pqsafe, its recover did not reach the
// goroutines pqarrow starts for struct columns.
func TestScanParquetDamaged(t *testing.T) {
	fingerprint := func(path string) (string, error) {
		var sb strings.Builder
		err := ScanParquet(path, nil, 64, func(rec arrow.RecordBatch) error {
			for i, col := range rec.Columns() {
				fmt.Fprintf(&sb, "%s=%s;", rec.ColumnName(i), col)
			}
			return nil
		})
		return sb.String(), err
	}
	for i, b := range parquetSeeds(t) {
		dir := t.TempDir()
		orig := filepath.Join(dir, "orig.parquet")
		if err := os.WriteFile(orig, b, 0o644); err != nil {
			t.Fatal(err)
		}
		want, err := fingerprint(orig)
		if err != nil || want == "" {
			t.Fatalf("seed %d undamaged: %q, %v", i, want, err)
		}
		pqsafetest.DamageFile(t, fmt.Sprintf("seed %d", i), orig, filepath.Join(dir, "part.parquet"), pqsafetest.Stride(5), "ingest: ", false,
			func(path string) error {
				got, err := fingerprint(path)
				if err == nil && got != want {
					return fmt.Errorf("%w", pqsafetest.ErrWrongData)
				}
				return err
			})
	}

}
