// Package cli holds the commands of the kubectl-clusternet plugin.
package cli

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/logs"
	"k8s.io/kubectl/pkg/cmd/annotate"
	"k8s.io/kubectl/pkg/cmd/apiresources"
	"k8s.io/kubectl/pkg/cmd/apply"
	"k8s.io/kubectl/pkg/cmd/create"
	"k8s.io/kubectl/pkg/cmd/delete"
	"k8s.io/kubectl/pkg/cmd/describe"
	"k8s.io/kubectl/pkg/cmd/diff"
	"k8s.io/kubectl/pkg/cmd/edit"
	"k8s.io/kubectl/pkg/cmd/explain"
	"k8s.io/kubectl/pkg/cmd/get"
	"k8s.io/kubectl/pkg/cmd/label"
	"k8s.io/kubectl/pkg/cmd/options"
	"k8s.io/kubectl/pkg/cmd/patch"
	"k8s.io/kubectl/pkg/cmd/scale"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	utilcomp "k8s.io/kubectl/pkg/util/completion"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/clusternet/clusternet/pkg/cli/englishhelp"
	"github.com/clusternet/clusternet/pkg/client/shadow"
)

// DisplayName is how help and errors name the plugin: users type it through kubectl.
const DisplayName = "kubectl clusternet"

var rootLong = templates.LongDesc(`
	Manage many Kubernetes clusters from one parent cluster.

	Clusternet kinds (ManagedCluster, Subscription, Description, HelmChart, ...)
	are read from and written to the parent. Ordinary kinds (Deployment,
	Service, Namespace, ...) are templates that Subscriptions distribute to
	child clusters: they are stored in the parent, never run there.

	With --cluster NAME (a ManagedCluster name or a cluster id), any kubectl
	command runs on that child cluster through the parent instead: get, logs,
	exec, port-forward, top, and the rest.`)

var rootExample = templates.Examples(`
	# Store templates and a Subscription that distributes them
	kubectl clusternet apply -f examples/applications/

	# List the templates and the child clusters
	kubectl clusternet get deploy -n foo
	kubectl clusternet get mcls -A

	# Let a child cluster register: a bootstrap token and the commands for the child
	kubectl clusternet create token --ttl 1h --print-join-command

	# Run kubectl on one child, or list pods of every child
	kubectl clusternet --cluster clusternet-cluster-dzqkw get pods -A
	kubectl clusternet get pods -A --clusters all`)

// ClusternetOptions build the plugin's root command.
type ClusternetOptions struct {
	// Arguments are the command line, the program's name first (os.Args).
	Arguments []string
	genericiooptions.IOStreams
}

// NewClusternetCommand builds the command for o.Arguments: kubectl's own
// command tree pointed at one child when they carry --cluster or
// --cluster-id, the plugin's commands on the parent otherwise.
func NewClusternetCommand(o ClusternetOptions) *cobra.Command {
	var args []string
	if len(o.Arguments) > 1 {
		args = o.Arguments[1:]
	}
	valueFlags := newConfigFlags(o.IOStreams)
	fs := rootFlagSet(valueFlags)
	if flags, rest, ok := perClusterArgs(args, fs); ok {
		return NewCmdPerCluster(NewPerClusterOptions(o.IOStreams, flags, rest))
	}
	cmd := NewCmdClusternet(o.IOStreams)
	cmd.SetArgs(args)
	return cmd
}

func newConfigFlags(streams genericiooptions.IOStreams) *genericclioptions.ConfigFlags {
	return genericclioptions.NewConfigFlags(true).WithDeprecatedPasswordFlag().
		WithDiscoveryBurst(300).WithDiscoveryQPS(50.0).WithWarningPrinter(streams)
}

// NewCmdClusternet builds the root command of the plugin's own commands,
// with every kubectl global flag. Ordinary kinds go to the shadow API.
func NewCmdClusternet(streams genericiooptions.IOStreams) *cobra.Command {
	clusterFlags := &ClusterFlags{}
	cmd := &cobra.Command{
		Use:     "kubectl-clusternet",
		Short:   "Manage many Kubernetes clusters from one parent cluster",
		Long:    rootLong,
		Example: rootExample,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: DisplayName,
		},
		// Help only: a bare `kubectl clusternet` prints usage and succeeds.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if clusterFlags.ChildKubeconfig != "" && cmd.Name() != "kubeconfig" {
				return fmt.Errorf("--child-kubeconfig needs --cluster: it passes a child user's credentials to the child that --cluster names")
			}
			return nil
		},
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)

	configFlags := newConfigFlags(streams)
	flags := cmd.PersistentFlags()
	addRootFlags(flags, configFlags, clusterFlags)
	// Templates: resource requests of ordinary kinds go to the shadow API.
	configFlags.WrapConfigFn = shadow.Wrap
	matchVersionFlags := cmdutil.NewMatchVersionFlags(newWithoutShadowGroup(configFlags, streams))
	f := cmdutil.NewFactory(matchVersionFlags)
	parent := parentGetter{matchVersionFlags}

	getCmd := get.NewCmdGet(DisplayName, f, streams)
	getCmd.ValidArgsFunction = utilcomp.ResourceTypeAndNameCompletionFunc(f)
	kubectlCmds := []*cobra.Command{
		create.NewCmdCreate(f, streams),
		getCmd,
		edit.NewCmdEdit(f, streams),
		delete.NewCmdDelete(f, streams),
		apply.NewCmdApply(DisplayName, f, streams),
		NewCmdDiff(diff.NewCmdDiff(f, streams), f, parent, streams),
		patch.NewCmdPatch(f, streams),
		scale.NewCmdScale(f, streams),
		label.NewCmdLabel(f, streams),
		annotate.NewCmdAnnotate(DisplayName, f, streams),
		describe.NewCmdDescribe(DisplayName, f, streams),
		explain.NewCmdExplain(DisplayName, f, streams),
		apiresources.NewCmdAPIResources(f, streams),
	}
	for _, c := range kubectlCmds {
		adaptKubectlCommand(c)
	}
	// kubectl's `create token` makes ServiceAccount tokens, which mean
	// nothing for templates: the plugin's makes bootstrap tokens instead.
	for _, c := range kubectlCmds[0].Commands() {
		if c.Name() == "token" {
			kubectlCmds[0].RemoveCommand(c)
		}
	}
	kubectlCmds[0].AddCommand(NewCmdCreateToken(parent, streams))
	approveCmd, denyCmd := NewCmdApprove(parent, streams), NewCmdDeny(parent, streams)
	addFanout(getCmd, parent, configFlags, streams)

	groups := templates.CommandGroups{
		{
			Message:  "Templates and Clusternet objects (ordinary kinds are templates, stored in the parent):",
			Commands: []*cobra.Command{kubectlCmds[0], getCmd, kubectlCmds[2], kubectlCmds[3], kubectlCmds[4], kubectlCmds[5]},
		},
		{
			Message:  "Changing objects:",
			Commands: []*cobra.Command{kubectlCmds[6], kubectlCmds[7], kubectlCmds[8], kubectlCmds[9]},
		},
		{
			Message:  "Inspecting:",
			Commands: []*cobra.Command{kubectlCmds[10], kubectlCmds[11], kubectlCmds[12]},
		},
		{
			Message: "Following Subscriptions to the child clusters:",
			Commands: []*cobra.Command{
				NewCmdRollout(f, parent, streams),
				NewCmdTree(f, parent, streams),
				NewCmdRender(f, parent, clusterFlags, streams),
			},
		},
		{
			Message: "Registering child clusters (`create token` makes a bootstrap token for them):",
			// join and unjoin run against a child: the kubeconfig's cluster,
			// as parentGetter reads it (without the shadow rewriting).
			Commands: []*cobra.Command{approveCmd, denyCmd, NewCmdJoin(parent, streams), NewCmdUnjoin(parent, streams)},
		},
		{
			Message: "Child clusters (and --cluster <name|id> for any kubectl command on one child):",
			Commands: []*cobra.Command{
				NewCmdKubeconfig(parent, clusterFlags, streams),
				NewCmdLogs(parent, configFlags, streams),
				NewCmdExec(parent, configFlags, streams),
				NewCmdTop(parent, configFlags, streams),
				NewCmdVersion(f, streams),
			},
		},
	}
	groups.Add(cmd)
	templates.ActsAsRootCommand(cmd, []string{"options"}, groups...)
	// kubectl's help templates silence usage for every command; ours print it
	// on a flag or validation mistake and silence it once validated.
	cmd.SilenceUsage = false
	nameThePluginInHelp(cmd, streams)
	cmd.AddCommand(options.NewCmdOptions(streams.Out))
	// kubectl's examples that cannot work on templates (status, nodes...)
	// are dropped from the help, which the examples test runs (docs/cli).
	englishhelp.FitExamples(cmd)

	utilcomp.SetFactoryForCompletion(f)
	registerCompletions(cmd, f, parent)
	completeRequests(parent, approveCmd, denyCmd)
	return cmd
}

// nameThePluginInHelp makes kubectl's help templates, which name commands
// by their names ("kubectl-clusternet get <command> --help"), say how users
// type them: "kubectl clusternet get <command> --help".
func nameThePluginInHelp(root *cobra.Command, streams genericiooptions.IOStreams) {
	help, usage := root.HelpFunc(), root.UsageFunc()
	capture := func(c *cobra.Command, out io.Writer, print func()) {
		var buf bytes.Buffer
		c.SetOut(&buf)
		c.SetErr(&buf)
		print()
		if c == root {
			c.SetOut(streams.Out)
			c.SetErr(streams.ErrOut)
		} else {
			c.SetOut(nil)
			c.SetErr(nil)
		}
		_, _ = io.WriteString(out, strings.ReplaceAll(buf.String(), `"kubectl-clusternet `, `"`+DisplayName+" "))
	}
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		capture(c, c.OutOrStdout(), func() { help(c, args) })
	})
	root.SetUsageFunc(func(c *cobra.Command) error {
		var err error
		capture(c, c.OutOrStderr(), func() { err = usage(c) })
		return err
	})
}

// addRootFlags adds kubectl's global flags, with --cluster selecting a child
// cluster instead of a kubeconfig cluster (--context picks those).
func addRootFlags(flags *pflag.FlagSet, configFlags *genericclioptions.ConfigFlags, clusterFlags *ClusterFlags) {
	configFlags.ClusterName = nil
	configFlags.AddFlags(flags)
	cmdutil.NewMatchVersionFlags(configFlags).AddFlags(flags)
	clusterFlags.AddFlags(flags)
}

// rootFlagSet holds the root's flags, to tell which of them take values.
func rootFlagSet(configFlags *genericclioptions.ConfigFlags) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kubectl-clusternet", pflag.ContinueOnError)
	addRootFlags(fs, configFlags, &ClusterFlags{})
	logs.AddFlags(fs)
	return fs
}

var kubectlInExample = regexp.MustCompile(`\bkubectl (?:clusternet )?`)

// adaptKubectlCommand makes a kubectl command one of the plugin's: examples
// say `kubectl clusternet`, and errors come back as values.
func adaptKubectlCommand(cmd *cobra.Command) {
	cmd.Example = kubectlInExample.ReplaceAllString(cmd.Example, DisplayName+" ")
	convertRuns(cmd)
	for _, c := range cmd.Commands() {
		adaptKubectlCommand(c)
	}
}

// parentGetter is the parent itself, without the shadow rewriting: for what
// reaches children through the parent's proxy.
type parentGetter struct {
	genericclioptions.RESTClientGetter
}

func (p parentGetter) ToRESTConfig() (*rest.Config, error) {
	return p.ToRawKubeConfigLoader().ClientConfig()
}
