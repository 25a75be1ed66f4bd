package main

import (
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/component-base/logs"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"

	"github.com/clusternet/clusternet/pkg/cli"
	"github.com/clusternet/clusternet/pkg/server/agent"
	"github.com/clusternet/clusternet/pkg/server/hub"
)

// Commands are the command trees whose flags the docs may name.
type Commands struct {
	Hub, Agent, Plugin, Kubectl *cobra.Command
}

// realCommands builds the commands the binaries run, the way their mains
// build them, so the flags checked are exactly the flags shipped.
func realCommands() Commands {
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}
	plugin := cli.NewCmdClusternet(streams)
	// cli.Run adds the logging flags (-v, --vmodule) when the plugin starts.
	logs.AddFlags(plugin.PersistentFlags())
	kubectl := kubectlcmd.NewKubectlCommand(kubectlcmd.KubectlOptions{
		Arguments:   []string{"kubectl"},
		ConfigFlags: genericclioptions.NewConfigFlags(true).WithDeprecatedPasswordFlag(),
		IOStreams:   streams,
	})
	logs.AddFlags(kubectl.PersistentFlags())
	return Commands{Hub: hub.NewCommand(), Agent: agent.NewCommand(), Plugin: plugin, Kubectl: kubectl}
}

// normalize is the hub's, agent's and plugin's flag name normalization
// (cliflag.WordSepNormalizeFunc): --kube_api_qps is --kube-api-qps.
func normalize(name string) string { return strings.ReplaceAll(name, "_", "-") }

// lookupFlag finds a long flag as cobra would for cmd: its own flags, then
// the persistent flags of its parents. --help is added by cobra when the
// command runs, --version when the root has a version.
func lookupFlag(cmd *cobra.Command, name string) *pflag.Flag {
	name = normalize(name)
	for c := cmd; c != nil; c = c.Parent() {
		if f := c.Flags().Lookup(name); f != nil {
			return f
		}
		if f := c.PersistentFlags().Lookup(name); f != nil {
			return f
		}
	}
	switch {
	case name == "help":
		return &pflag.Flag{Name: "help", NoOptDefVal: "true"}
	case name == "version" && cmd.Root().Version != "":
		return &pflag.Flag{Name: "version", NoOptDefVal: "true"}
	}
	return nil
}

// lookupShorthand finds a one-letter flag for cmd.
func lookupShorthand(cmd *cobra.Command, short string) *pflag.Flag {
	for c := cmd; c != nil; c = c.Parent() {
		if f := c.Flags().ShorthandLookup(short); f != nil {
			return f
		}
		if f := c.PersistentFlags().ShorthandLookup(short); f != nil {
			return f
		}
	}
	return nil
}

// flagNames are the long flags cmd accepts, its parents' persistent ones included.
func flagNames(cmd *cobra.Command) []string {
	var names []string
	add := func(f *pflag.Flag) { names = append(names, f.Name) }
	for c := cmd; c != nil; c = c.Parent() {
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
	}
	names = append(names, "help")
	if cmd.Root().Version != "" {
		names = append(names, "version")
	}
	return names
}

// treeFlagNames are the long flags of every command in the tree.
func treeFlagNames(root *cobra.Command, into map[string]bool) {
	for _, n := range flagNames(root) {
		into[n] = true
	}
	for _, sub := range root.Commands() {
		treeFlagNames(sub, into)
	}
}

// takesValue: a flag without a default for its bare form (--flag) needs a
// value, in the next word when not given with =.
func takesValue(f *pflag.Flag) bool { return f.NoOptDefVal == "" }

// subcommand is cmd's child named (or aliased) name.
func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, sub := range cmd.Commands() {
		if sub.Name() == name || sub.HasAlias(name) {
			return sub
		}
	}
	return nil
}
