package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	utilcomp "k8s.io/kubectl/pkg/util/completion"
)

// registerCompletions completes the global flags' values: namespaces of
// templates and of the parent, kubeconfig contexts and users, and child
// clusters for --cluster and --cluster-id.
func registerCompletions(cmd *cobra.Command, f cmdutil.Factory, parent parentGetter) {
	noFiles := cobra.ShellCompDirectiveNoFileComp
	parentFactory := cmdutil.NewFactory(parent)
	must(cmd.RegisterFlagCompletionFunc("namespace", func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		names := append(utilcomp.CompGetResource(f, "namespace", toComplete), utilcomp.CompGetResource(parentFactory, "namespace", toComplete)...)
		slices.Sort(names)
		return slices.Compact(names), noFiles
	}))
	must(cmd.RegisterFlagCompletionFunc("context", func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return utilcomp.ListContextsInConfig(toComplete), noFiles
	}))
	must(cmd.RegisterFlagCompletionFunc("user", func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return utilcomp.ListUsersInConfig(toComplete), noFiles
	}))
	clusters := func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return completeClusters(parent, toComplete), noFiles
	}
	must(cmd.RegisterFlagCompletionFunc(flagCluster, clusters))
	must(cmd.RegisterFlagCompletionFunc(flagClusterID, clusters))
}

// completeClusters lists the ManagedCluster names starting with toComplete.
func completeClusters(parent parentGetter, toComplete string) []string {
	cfg, err := parent.ToRESTConfig()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := listClusters(ctx, parentClusterLister(cfg))
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range all {
		if strings.HasPrefix(c.Name, toComplete) {
			out = append(out, c.Name)
		}
	}
	return slices.Compact(out)
}

// must panics on a programming error while building commands.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

// completeRequests completes the arguments of approve and deny with the
// parent's ClusterRegistrationRequests.
func completeRequests(parent parentGetter, cmds ...*cobra.Command) {
	parentFactory := cmdutil.NewFactory(parent)
	for _, c := range cmds {
		c.ValidArgsFunction = func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return utilcomp.CompGetResource(parentFactory, "clusterregistrationrequests", toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
}
