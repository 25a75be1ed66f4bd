package clusterapi

import (
	"context"

	"k8s.io/client-go/kubernetes"

	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/registration"
)

// deregister removes cluster id's registration from the parent
// (registration.Deregister, which `kubectl clusternet unjoin` shares),
// without the steps that need the agent: the Cluster is being torn down and
// nobody can reach it. It reports whether it deleted anything.
func deregister(ctx context.Context, kube kubernetes.Interface, clusternet versioned.Interface, id string) (bool, error) {
	return registration.Deregister(ctx, kube, clusternet, id)
}
