// Package cli holds the commands of the kubectl-clusternet plugin.
package cli

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"
)

// DisplayName is how help and errors name the plugin: users type it through kubectl.
const DisplayName = "kubectl clusternet"

var rootLong = templates.LongDesc(`
	Manage many Kubernetes clusters from one parent cluster.

	Clusternet kinds (ManagedCluster, Subscription, Description, ...) are read
	from the parent. Ordinary kinds (Deployment, Service, ...) are templates that
	Subscriptions distribute to child clusters.`)

// NewCmdClusternet builds the root command with every kubectl global flag.
func NewCmdClusternet(streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kubectl-clusternet",
		Short: "Manage many Kubernetes clusters from one parent cluster",
		Long:  rootLong,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: DisplayName,
		},
		// Help only: a bare `kubectl clusternet` prints usage and succeeds.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	configFlags := genericclioptions.NewConfigFlags(true).WithDeprecatedPasswordFlag().WithWarningPrinter(streams)
	configFlags.AddFlags(cmd.PersistentFlags())
	f := cmdutil.NewFactory(configFlags)

	cmd.AddCommand(NewCmdVersion(f, streams))
	return cmd
}
