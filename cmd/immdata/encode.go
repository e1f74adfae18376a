package main

import (
	"errors"

	"github.com/immkit/immkit/internal/cli"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newEncodeCmd) }

func newEncodeCmd(g *cli.Global) *cobra.Command {
	return &cobra.Command{
		Use:     "encode IN -o OUT",
		Short:   "Encode ingested samples into latents and tokens (work in progress)",
		Example: "  immdata encode /tmp/ingested -o /tmp/enc",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("encode: not implemented yet")
		},
	}
}
