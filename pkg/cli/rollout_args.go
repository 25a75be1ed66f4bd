package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

var (
	subscriptionKind = schema.GroupKind{Group: appsv1alpha1.GroupName, Kind: "Subscription"}
	helmChartKind    = schema.GroupKind{Group: appsv1alpha1.GroupName, Kind: "HelmChart"}
)

// namedResource is what a TYPE/NAME (or TYPE NAME) argument names.
type namedResource struct {
	mapping *meta.RESTMapping
	name    string
}

func (r namedResource) isSubscription() bool {
	return r.mapping.GroupVersionKind.GroupKind() == subscriptionKind
}

// parseResourceArgs reads TYPE/NAME or TYPE NAME, the type resolved with
// the parent's RESTMapper as kubectl resolves it (plural, singular, short
// name, with or without the group: subscription, subs, sub.apps.clusternet.io).
func parseResourceArgs(mapper meta.RESTMapper, args []string, usage string) (namedResource, error) {
	var typ, name string
	switch len(args) {
	case 1:
		var ok bool
		if typ, name, ok = strings.Cut(args[0], "/"); !ok || typ == "" || name == "" {
			return namedResource{}, fmt.Errorf("argument %q: give TYPE/NAME, as in %s", args[0], usage)
		}
	case 2:
		typ, name = args[0], args[1]
		if strings.Contains(typ, "/") {
			return namedResource{}, fmt.Errorf("arguments %q: give TYPE/NAME or TYPE NAME, as in %s", args, usage)
		}
	default:
		return namedResource{}, fmt.Errorf("%d arguments %q: give one resource as TYPE/NAME, as in %s", len(args), args, usage)
	}
	if strings.Contains(name, "/") {
		return namedResource{}, fmt.Errorf("name %q: a name has no \"/\"; give TYPE/NAME, as in %s", name, usage)
	}
	fullGVR, gr := schema.ParseResourceArg(strings.ToLower(typ))
	var gvk schema.GroupVersionKind
	if fullGVR != nil {
		// "deployments.v1.apps" names a version; when that does not map,
		// it is read as a group ("subscriptions.apps.clusternet.io").
		gvk, _ = mapper.KindFor(*fullGVR)
	}
	if gvk.Empty() {
		var err error
		if gvk, err = mapper.KindFor(gr.WithVersion("")); err != nil {
			return namedResource{}, fmt.Errorf("the parent does not serve a resource type %q (see `kubectl clusternet api-resources`): %w", typ, err)
		}
	}
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return namedResource{}, err
	}
	return namedResource{mapping: mapping, name: name}, nil
}

// parentReads is how rollout status and tree read the parent: the
// namespace of the command line, the parent's RESTMapper (kinds resolved as
// kubectl resolves them), a clientset of Clusternet's kinds with the
// caller's own credentials, and whether the output may be coloured. Tests
// put their own in before complete.
type parentReads struct {
	namespace  string
	mapper     func() (meta.RESTMapper, error)
	newClient  func() (versioned.Interface, error)
	allowColor func(io.Writer) bool
}

// complete fills in what tests did not: the parent itself, not the shadow
// API (Subscriptions, Bases and Descriptions are not templates).
func (p *parentReads) complete(f cmdutil.Factory, parent genericclioptions.RESTClientGetter) error {
	if p.namespace == "" {
		ns, _, err := f.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return err
		}
		p.namespace = ns
	}
	if p.mapper == nil {
		p.mapper = f.ToRESTMapper
	}
	if p.newClient == nil {
		p.newClient = func() (versioned.Interface, error) {
			cfg, err := parent.ToRESTConfig()
			if err != nil {
				return nil, err
			}
			return versioned.NewForConfig(cfg)
		}
	}
	if p.allowColor == nil {
		p.allowColor = printers.AllowsColorOutput
	}
	return nil
}

// completeValidateRun is the RunE of the commands with kubectl's
// Complete/Validate/Run shape whose Complete needs no *cobra.Command: a mistake
// Complete or Validate finds prints the usage; once validated, errors do
// not (they are about the parent, not the command line).
func completeValidateRun(complete func(args []string) error, validate func() error, run func(context.Context) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := complete(args); err != nil {
			return err
		}
		if err := validate(); err != nil {
			return err
		}
		cmd.SilenceUsage = true
		return run(cmd.Context())
	}
}
