package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"

	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

// fieldManager owns what join applies in the child.
const fieldManager = "kubectl-clusternet"

// fleetClients reach the child and the parent of join and unjoin.
type fleetClients struct {
	childKube        kubernetes.Interface
	childDynamic     dynamic.Interface
	childMapper      meta.RESTMapper
	parentKube       kubernetes.Interface
	parentClusternet versioned.Interface
	// anonymous reaches a URL with only a CA and, optionally, a bearer
	// token: what the agent has when it registers.
	anonymous func(url string, ca []byte, token string) (kubernetes.Interface, error)
}

func newFleetClients(child, parent *rest.Config) (*fleetClients, error) {
	c := &fleetClients{anonymous: anonymousClient}
	var err error
	if c.childKube, err = kubernetes.NewForConfig(child); err != nil {
		return nil, err
	}
	if c.childDynamic, err = dynamic.NewForConfig(child); err != nil {
		return nil, err
	}
	c.childMapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.childKube.Discovery()))
	if c.parentKube, err = kubernetes.NewForConfig(parent); err != nil {
		return nil, err
	}
	if c.parentClusternet, err = versioned.NewForConfig(parent); err != nil {
		return nil, err
	}
	return c, nil
}

// anonymousClient reaches rawURL trusting only ca (PEM), as the agent
// does, with token as its only credential.
func anonymousClient(rawURL string, ca []byte, token string) (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(&rest.Config{
		Host:            rawURL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		Timeout:         probeTimeout,
	})
}

// reached says whether err is an answer of the apiserver (any HTTP
// status), as opposed to a failure to reach it (DNS, TCP, TLS).
func reached(err error) bool {
	if err == nil {
		return true
	}
	var status apierrors.APIStatus
	return errors.As(err, &status)
}

// unreachable explains why a URL did not answer.
func unreachable(rawURL string, err error) string {
	var dnsErr *net.DNSError
	var urlErr *url.Error
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("the name %q does not resolve", dnsErr.Name)
	case errors.As(err, &urlErr) && isCertError(urlErr.Err):
		return fmt.Sprintf("its certificate is not the parent's (%v)", urlErr.Err)
	default:
		return fmt.Sprintf("%q does not answer (%v)", rawURL, err)
	}
}

func isCertError(err error) bool {
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verification *tls.CertificateVerificationError
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verification)
}

// whoAmI is the user the parent at rawURL takes token for.
func (c *fleetClients) whoAmI(ctx context.Context, rawURL string, ca []byte, token string) (authnv1.UserInfo, error) {
	client, err := c.anonymous(rawURL, ca, token)
	if err != nil {
		return authnv1.UserInfo{}, err
	}
	r, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return authnv1.UserInfo{}, err
	}
	return r.Status.UserInfo, nil
}

// applyToChild server-side applies obj in the child (dry run only with
// dryRun), as field manager kubectl-clusternet.
func (c *fleetClients) applyToChild(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	ri, err := c.childResource(obj)
	if err != nil {
		return err
	}
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	return err
}

func (c *fleetClients) childResource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := c.childMapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("the child serves no %s: %w", gvk, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.childDynamic.Resource(mapping.Resource).Namespace(obj.GetNamespace()), nil
	}
	return c.childDynamic.Resource(mapping.Resource), nil
}
