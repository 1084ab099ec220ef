package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func runCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run FILE|DIR...",
		Short: "Run bundles on real Envoy proxies and check every expectation",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return bad(errors.New("run: not implemented yet"))
		},
	}
}
