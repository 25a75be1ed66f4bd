package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/clusternet/clusternet/charts"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

// agentFootprint is every object join's render of the agent chart can
// make in the child (the Namespace too), in install order: the only
// (kind, namespace, name)s join checks, takes over and unjoin deletes.
func agentFootprint() ([]*unstructured.Unstructured, error) {
	return agentObjects(map[string]any{
		"createNamespace": true, "parentURL": "https://parent.invalid", "registrationToken": "abcdef.0123456789abcdef",
	})
}

// madeByJoin says whether obj carries join's label.
func madeByJoin(obj *unstructured.Unstructured) bool {
	return obj.GetLabels()[clusterv1beta1.LabelCreatedBy] == installedBy
}

// getInChild is the child's object of obj's kind, namespace and name, or
// nil when there is none.
func (c *fleetClients) getInChild(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := c.childResource(obj)
	if err != nil {
		return nil, err
	}
	got, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, inChild("get", kindAndName(obj), err)
	}
	return got, nil
}

// refuseTakeover fails when join would apply over an agent it did not
// install (one of helm's, or hand-made) or over its own agent joined to
// another parent than parentURL: force-applying would take the objects
// over, and unjoin would then delete them. The Namespace is exempt: join
// uses a namespace it finds and leaves it unlabelled.
func refuseTakeover(ctx context.Context, c *fleetClients, parentURL string) error {
	footprint, err := agentFootprint()
	if err != nil {
		return err
	}
	for _, want := range footprint {
		if want.GetKind() == "Namespace" {
			continue
		}
		got, err := c.getInChild(ctx, want)
		if err != nil || got == nil {
			if err != nil {
				return err
			}
			continue
		}
		if !madeByJoin(got) {
			return fmt.Errorf("the child has %s already, not installed by join (no label %s=%s; labels %v): join would take over an agent installed otherwise: remove that agent first (if helm installed it: helm uninstall clusternet-agent -n %s)",
				kindAndName(got), clusterv1beta1.LabelCreatedBy, installedBy, got.GetLabels(), charts.Namespace)
		}
		if got.GetKind() != "Secret" {
			continue
		}
		if other := registrationParentURL(got); other != "" && other != parentURL {
			return fmt.Errorf("the child's agent is joined to another parent, %s (Secret %s/%s), not %s: run `kubectl clusternet unjoin` against that parent first",
				other, got.GetNamespace(), got.GetName(), parentURL)
		}
	}
	return nil
}

// registrationParentURL is the parentURL of the agent's registration
// Secret as the child serves it (data, base64) or as a fake holds it
// (stringData).
func registrationParentURL(secret *unstructured.Unstructured) string {
	if s, ok, _ := unstructured.NestedString(secret.Object, "data", "parentURL"); ok {
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			return string(b)
		}
	}
	s, _, _ := unstructured.NestedString(secret.Object, "stringData", "parentURL")
	return s
}

// removeJoined deletes, in the reverse of install order, the objects of
// join's footprint that carry its label (the Namespace only when join made
// it, as only then does it carry the label), and returns them.
func removeJoined(ctx context.Context, c *fleetClients) ([]*unstructured.Unstructured, error) {
	footprint, err := agentFootprint()
	if err != nil {
		return nil, err
	}
	slices.Reverse(footprint)
	background := metav1.DeletePropagationBackground
	var removed []*unstructured.Unstructured
	for _, want := range footprint {
		got, err := c.getInChild(ctx, want)
		if err != nil {
			return removed, err
		}
		if got == nil || !madeByJoin(got) {
			continue
		}
		ri, err := c.childResource(got)
		if err != nil {
			return removed, err
		}
		if err := ri.Delete(ctx, got.GetName(), metav1.DeleteOptions{PropagationPolicy: &background}); err != nil && !apierrors.IsNotFound(err) {
			return removed, inChild("delete", kindAndName(got), err)
		}
		removed = append(removed, got)
	}
	return removed, nil
}
