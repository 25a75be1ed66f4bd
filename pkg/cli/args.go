package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Flags of per-cluster mode. --cluster takes the place of kubectl's
// --cluster (a kubeconfig cluster name): pick those with --context.
const (
	flagCluster         = "cluster"
	flagClusterID       = "cluster-id"
	flagChildKubeconfig = "child-kubeconfig"
)

// ClusterFlags are the persistent flags that point a command at one child.
type ClusterFlags struct {
	Cluster         string
	ClusterID       string
	ChildKubeconfig string
}

// AddFlags adds --cluster, --cluster-id and --child-kubeconfig.
func (c *ClusterFlags) AddFlags(flags *pflag.FlagSet) {
	flags.StringVar(&c.Cluster, flagCluster, c.Cluster,
		"Run the command on this child cluster (ManagedCluster name or cluster id) through the parent, instead of on templates.")
	flags.StringVar(&c.ClusterID, flagClusterID, c.ClusterID, "Same as --cluster.")
	flags.StringVar(&c.ChildKubeconfig, flagChildKubeconfig, c.ChildKubeconfig,
		"With --cluster: pass the credentials of this child kubeconfig through the parent (the user "+
			"'clusternet' with a clusternet-token or clusternet-certificate extra) instead of impersonating the parent user.")
}

// Target is the child --cluster or --cluster-id names.
func (c *ClusterFlags) Target() (string, error) {
	switch {
	case c.Cluster != "" && c.ClusterID != "" && c.Cluster != c.ClusterID:
		return "", fmt.Errorf("--cluster %q and --cluster-id %q name different clusters: give one of them", c.Cluster, c.ClusterID)
	case c.Cluster != "":
		return c.Cluster, nil
	default:
		return c.ClusterID, nil
	}
}

// perClusterArgs finds the per-cluster flags in args (before any "--") and
// returns them and the args without them. ok is false when args do not ask
// for per-cluster mode: no --cluster/--cluster-id, or a command of the
// plugin's own that takes --cluster itself (kubeconfig, render), or shell completion
// of the --cluster value. valueFlags tells flags that take a value from
// booleans, to find the command's name.
func perClusterArgs(args []string, valueFlags *pflag.FlagSet) (flags ClusterFlags, rest []string, ok bool) {
	var command string
	completing := len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd)
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, value, hasValue := splitFlag(arg)
		var target *string
		switch name {
		case flagCluster:
			target = &flags.Cluster
		case flagClusterID:
			target = &flags.ClusterID
		case flagChildKubeconfig:
			target = &flags.ChildKubeconfig
		}
		if target != nil {
			if !hasValue {
				if i+1 >= len(args) || (completing && i+1 == len(args)-1) {
					// No value yet, or shell completion of the value: the
					// plugin's own root answers that.
					return ClusterFlags{}, nil, false
				}
				i++
				value = args[i]
			}
			*target = value
			ok = ok || name != flagChildKubeconfig
			continue
		}
		rest = append(rest, arg)
		switch {
		case name == "":
			if command == "" && (!completing || i != 0) {
				command = arg
			}
		case !hasValue && takesValue(valueFlags, arg):
			if i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
		}
	}
	if command == "kubeconfig" || command == "render" {
		return ClusterFlags{}, nil, false
	}
	return flags, rest, ok
}

// splitFlag returns the long name of a "--name[=value]" argument; "" for
// anything else (short flags are never per-cluster flags).
func splitFlag(arg string) (name, value string, hasValue bool) {
	if !strings.HasPrefix(arg, "-") || arg == "-" {
		return "", "", false
	}
	if !strings.HasPrefix(arg, "--") {
		return "-", "", strings.Contains(arg, "=") || len(arg) > 2
	}
	name, value, hasValue = strings.Cut(strings.TrimPrefix(arg, "--"), "=")
	return name, value, hasValue
}

// takesValue tells whether a flag argument without "=" consumes the next
// argument, judging by the flags kubectl's root knows.
func takesValue(flags *pflag.FlagSet, arg string) bool {
	var f *pflag.Flag
	if strings.HasPrefix(arg, "--") {
		f = flags.Lookup(strings.TrimPrefix(arg, "--"))
	} else if len(arg) == 2 {
		f = flags.ShorthandLookup(arg[1:])
	}
	return f != nil && f.NoOptDefVal == ""
}
