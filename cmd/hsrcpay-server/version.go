package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// newVersionCmd is "version": what --version prints.
func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the module version and VCS revision",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(stdout, c.Root().Version)
			return err
		},
	}
}
