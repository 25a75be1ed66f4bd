package approver

import (
	"context"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/seal"
)

// rootCAConfigMap is what kube-controller-manager publishes in every
// namespace: the CA bundle that verifies the parent apiserver.
const rootCAConfigMap = "kube-root-ca.crt"

// tokenFreshFor is how long the request's token can stay as it is: zero when
// there is none or less than half its life is left. The agent reads the
// renewed token from this request with its current one, so renewing at half
// life leaves it half a TTL to come by.
func (c *Controller) tokenFreshFor(crr *clusterv1beta1.ClusterRegistrationRequest) time.Duration {
	st := crr.Status
	if st.Result == nil || *st.Result != clusterv1beta1.RequestApproved || len(st.SealedToken) == 0 || st.TokenExpirationTimestamp == nil {
		return 0
	}
	renewAt := st.TokenExpirationTimestamp.Add(-c.opts.TokenTTL / 2)
	return renewAt.Sub(c.clock.Now())
}

// issueToken asks the parent for a bound, expiring token of the agent's
// ServiceAccount and seals it to the request's key, with the request's name
// as context so it cannot be replayed into another request. rootCA waits for
// the parent's CA bundle, read meanwhile.
func (c *Controller) issueToken(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest, ns string,
	rootCA func() ([]byte, error)) (*clusterv1beta1.ClusterRegistrationRequestStatus, error) {
	pub, err := seal.ParsePublicKey(crr.Spec.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("spec.publicKey: %w", err)
	}
	seconds := int64(c.opts.TokenTTL / time.Second)
	tr, err := c.kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, AgentServiceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	sealed, err := seal.Seal(pub, []byte(tr.Status.Token), []byte(crr.Name))
	if err != nil {
		return nil, err
	}
	ca, err := rootCA()
	if err != nil {
		return nil, err
	}
	exp := tr.Status.ExpirationTimestamp
	return &clusterv1beta1.ClusterRegistrationRequestStatus{
		SealedToken: sealed, TokenExpirationTimestamp: &exp, CACertificate: ca,
	}, nil
}

// caFresh is how long the approver answers with the CA bundle it last read.
// Every token it issues (each registration, each renewal) carries the
// bundle, and a thousand clusters registering at once read it a thousand
// times, from etcd; it changes only when the parent's CA rotates, and a
// rotation keeps the old CA in the bundle far longer than this.
const caFresh = time.Minute

// caBundle is the CA bundle last read, and when.
type caBundle struct {
	mu   sync.Mutex
	data []byte
	read time.Time
}

// rootCA is the parent's CA bundle, or nil when the parent does not publish
// one (the agent then verifies the parent with the CA it was configured with).
// Answers given at once share one read (the lock is held across it).
func (c *Controller) rootCA(ctx context.Context) ([]byte, error) {
	c.ca.mu.Lock()
	defer c.ca.mu.Unlock()
	if !c.ca.read.IsZero() && c.clock.Since(c.ca.read) < caFresh {
		return c.ca.data, nil
	}
	cm, err := c.kube.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, rootCAConfigMap, metav1.GetOptions{})
	var data []byte
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, err
	default:
		data = []byte(cm.Data["ca.crt"])
	}
	c.ca.data, c.ca.read = data, c.clock.Now()
	return data, nil
}
