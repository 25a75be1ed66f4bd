// Package command builds the hub's and agent's cobra commands the same way:
// grouped flags in help, validation before anything runs, logging applied
// once, and usage printed only for flag mistakes.
package command

import (
	"context"

	"github.com/spf13/cobra"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/term"

	"github.com/clusternet/clusternet/pkg/version"
)

// Component is what a server binary provides.
type Component struct {
	Use, Short, Long string
	Flags            cliflag.NamedFlagSets
	Logs             *logs.Options
	Validate         func() error
	Run              func(ctx context.Context) error
}

// New builds the command for c.
func New(c Component) *cobra.Command {
	cmd := &cobra.Command{
		Use:   c.Use,
		Short: c.Short,
		Long:  c.Long,
		Args:  cobra.NoArgs,
		// --version prints "clusternet-hub version v0.1.0", the stamped version.
		Version: version.Get().String(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.Validate(); err != nil {
				return err
			}
			// Logging is configured once per process, so not in Validate.
			if err := logsapi.ValidateAndApply(c.Logs, nil); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return c.Run(cmd.Context())
		},
	}
	for _, fs := range c.Flags.FlagSets {
		cmd.Flags().AddFlagSet(fs)
	}
	cols, _, _ := term.TerminalSize(cmd.OutOrStdout())
	cliflag.SetUsageAndHelpFunc(cmd, c.Flags, cols)
	return cmd
}
