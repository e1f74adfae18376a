package ingest

import (
	"context"
	"errors"
)

type jsonlSource struct {
	path string
	opts *SourceOptions
}

func (s *jsonlSource) Units(context.Context, func(Unit) error) error {
	return errors.New("ingest: jsonl sources are not implemented yet")
}

type parquetSource struct {
	path string
	opts *SourceOptions
}

func (s *parquetSource) Units(context.Context, func(Unit) error) error {
	return errors.New("ingest: parquet sources are not implemented yet")
}
