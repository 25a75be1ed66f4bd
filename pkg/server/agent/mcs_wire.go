package agent

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"

	"github.com/clusternet/clusternet/pkg/features"
	"github.com/clusternet/clusternet/pkg/server/agent/mcs"
)

// runMultiClusterService runs the multi-cluster services controllers
// (docs/mcs.md) when the MultiClusterService gate is on, until ctx ends;
// with it off, it removes the imported slices an earlier run left in the child.
// They start whatever the sync mode: exporting and importing endpoints is
// not applying applications. Until the hub has bound the agent's rights for
// them in the dedicated namespace, their informers retry.
func (a *Agent) runMultiClusterService(ctx context.Context) error {
	if !a.opts.FeatureGates.Enabled(features.MultiClusterService) {
		// What an earlier run with the gate on imported would go stale.
		go func() {
			if err := mcs.RemoveImported(ctx, a.child); err != nil {
				klog.FromContext(ctx).Info("Removing the imported EndpointSlices of multi-cluster services", "err", err)
			}
		}()
		return nil
	}
	parent, err := kubernetes.NewForConfig(a.credentialsConfig())
	if err != nil {
		return err
	}
	childMCS, err := mcsclient.NewForConfig(a.childCfg)
	if err != nil {
		return err
	}
	ctl, err := mcs.New(mcs.Config{Parent: parent, Namespace: a.creds.DedicatedNamespace, Child: a.child, ChildMCS: childMCS})
	if err != nil {
		return fmt.Errorf("multi-cluster services: %w", err)
	}
	go ctl.Run(ctx, 2)
	return nil
}
