package clusterapi

import (
	"errors"
	"fmt"
	"net"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/clusternet/clusternet/pkg/deployer"
)

// explainChildError is err from a discovered cluster with the object it
// concerns and what to fix: the kubeconfig's user, not an agent or a
// Description, is who acted there.
func explainChildError(err error) error {
	what, inner := "", err
	var oe *deployer.ObjectError
	if errors.As(err, &oe) {
		what, inner = oe.Ref.String()+": ", oe.Err
	}
	msg := inner.Error()
	var status apierrors.APIStatus
	if errors.As(inner, &status) && status.Status().Message != "" {
		msg = status.Status().Message
	}
	var netErr net.Error
	switch {
	case apierrors.IsUnauthorized(inner):
		msg += "; the cluster does not accept the kubeconfig's credentials: check that the Secret is current"
	case apierrors.IsForbidden(inner):
		msg += "; the kubeconfig's user needs cluster-admin rights in the cluster, as cluster-api's <cluster>-kubeconfig Secret gives"
	case errors.As(inner, &netErr):
		msg += "; the hub cannot reach the cluster's apiserver at the kubeconfig's server address"
	}
	return fmt.Errorf("%s%s", what, msg)
}
