package englishhelp

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"
)

func TestFitExamples(t *testing.T) {
	root := &cobra.Command{Use: "root", Example: templates.Examples(`
		# List all pods
		kubectl get pods

		# List status subresource for a single pod.
		kubectl get pod web-pod-13je7 --subresource status

		# Describe a node
		kubectl describe nodes kubernetes-node-emt8.c.myproject.internal`)}
	child := &cobra.Command{Use: "edit", Example: templates.Examples(`
		# Edit the service named 'registry'
		kubectl edit svc/registry

		# Use an alternative editor
		KUBE_EDITOR="nano" kubectl edit svc/registry

		# Edit the deployment 'mydeployment' in YAML and save the modified config in its annotation
		kubectl edit deployment/mydeployment -o yaml --save-config

		# Edit the 'status' subresource for the 'mydeployment' deployment
		kubectl edit deployment mydeployment --subresource='status'

		# Update a pod identified by the type and name in "pod.json"
		kubectl label -f pod.json status=unhealthy --resource-version=1`)}
	root.AddCommand(child)
	FitExamples(root)
	for _, tc := range []struct {
		cmd  *cobra.Command
		want string
	}{
		{root, "  # List all pods\n  kubectl get pods"},
		{child, "  # Edit the service named 'registry'\n  kubectl edit svc/registry\n  \n" + // templates.Examples indents blank lines too
			"  # Edit the deployment 'mydeployment' in YAML and save the modified config in its annotation\n" +
			"  kubectl edit deployment/mydeployment -o yaml --save-config"},
	} {
		if diff := cmp.Diff(tc.want, tc.cmd.Example); diff != "" {
			t.Errorf("%s examples (-want +got):\n%s", tc.cmd.Name(), diff)
		}
	}
}

// A comment alone never drops a paragraph: comments are translated, and
// only command lines say what the example does.
func TestFitExamplesReadsOnlyCommandLines(t *testing.T) {
	ex := "  # the node's status subresource\n  kubectl get pods"
	if got := fitExample(ex); got != ex {
		t.Errorf("fitExample dropped a paragraph for its comment:\n%s", got)
	}
	if got := fitExample(""); got != "" || strings.Contains(got, "\n") {
		t.Errorf("fitExample(\"\") = %q", got)
	}
}
