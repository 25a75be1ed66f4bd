package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"
	"sigs.k8s.io/yaml"

	clusternetversion "github.com/clusternet/clusternet/pkg/version"
)

var (
	versionLong = templates.LongDesc(i18n.T(`
		Print the plugin's version and, unless --client is set, the parent
		cluster's Kubernetes version.`))

	versionExample = templates.Examples(i18n.T(`
		# Print the plugin and parent versions
		kubectl clusternet version

		# Print only the plugin's version, as YAML
		kubectl clusternet version --client -o yaml`))
)

// Versions is what `version -o json|yaml` prints.
type Versions struct {
	ClientVersion *clusternetversion.Info `json:"clientVersion,omitempty"`
	ParentVersion *version.Info           `json:"parentVersion,omitempty"`
}

// VersionOptions are the options of `kubectl clusternet version`.
type VersionOptions struct {
	ClientOnly bool
	Output     string

	discover func() (*version.Info, error)

	genericiooptions.IOStreams
}

// NewVersionOptions returns options with defaults.
func NewVersionOptions(streams genericiooptions.IOStreams) *VersionOptions {
	return &VersionOptions{IOStreams: streams}
}

// NewCmdVersion builds `kubectl clusternet version`.
func NewCmdVersion(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewVersionOptions(streams)
	cmd := &cobra.Command{
		Use:     "version",
		Short:   i18n.T("Print the plugin and parent cluster versions"),
		Long:    versionLong,
		Example: versionExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(f); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run()
		},
	}
	cmd.Flags().BoolVar(&o.ClientOnly, "client", o.ClientOnly, "Print only the plugin's version; do not contact the parent.")
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "Output format: one of json or yaml; empty for text.")
	return cmd
}

// Complete wires the parent's discovery client.
func (o *VersionOptions) Complete(f cmdutil.Factory) error {
	o.discover = func() (*version.Info, error) {
		dc, err := f.ToDiscoveryClient()
		if err != nil {
			return nil, err
		}
		return dc.ServerVersion()
	}
	return nil
}

// Validate checks the flags.
func (o *VersionOptions) Validate() error {
	switch o.Output {
	case "", "json", "yaml":
		return nil
	default:
		return fmt.Errorf("--output %q is not supported: use json or yaml, or leave it out for text", o.Output)
	}
}

// Run prints the versions. A parent that cannot be reached still gets the
// client version printed before the error, as kubectl does.
func (o *VersionOptions) Run() error {
	client := clusternetversion.Get()
	v := Versions{ClientVersion: &client}
	var parentErr error
	if !o.ClientOnly {
		v.ParentVersion, parentErr = o.discover()
		if parentErr != nil {
			parentErr = fmt.Errorf("reading the parent cluster's version: %w", parentErr)
		}
	}
	switch o.Output {
	case "json":
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, _ = fmt.Fprintln(o.Out, string(data))
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, _ = fmt.Fprint(o.Out, string(data))
	default:
		_, _ = fmt.Fprintf(o.Out, "Client Version: %s\n", client.GitVersion)
		if v.ParentVersion != nil {
			_, _ = fmt.Fprintf(o.Out, "Parent Version: %s\n", v.ParentVersion.GitVersion)
		}
	}
	return parentErr
}
