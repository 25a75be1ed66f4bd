package agent

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/seal"
)

// Keys of the credentials Secret.
const (
	keyToken              = "token"
	keyTokenExpiration    = "tokenExpiration"
	keyTokenObtained      = "tokenObtained"
	keyCACert             = "caCertificate"
	keyClusterID          = "clusterID"
	keyDedicatedNamespace = "dedicatedNamespace"
	keyManagedCluster     = "managedClusterName"
	// keyPrivateKey is the agent's X25519 key: the hub seals this cluster's
	// parent credentials to its public half. It is written before the
	// registration request is made, so a crash cannot leave a request sealed
	// to a key nobody has.
	keyPrivateKey = "privateKey"
)

// Credentials are what the hub gave this cluster.
type Credentials struct {
	ParentURL       string
	Token           []byte
	TokenExpiration time.Time
	// TokenObtained is when the agent got the token. It is stored with it
	// so that renewal falls due at half the token's life from then, across
	// restarts: counted from a restart, it would come up to half a life
	// after the hub renewed the token, and with it the parent's CA bundle.
	TokenObtained      time.Time
	CACertificate      []byte
	ClusterID          types.UID
	DedicatedNamespace string
	ManagedClusterName string
}

// parentToken is the agent's current parent token. Every parent client reads
// it per request, so a renewed token reaches the informers, the heartbeat
// and the next tunnel dial without rebuilding them.
type parentToken struct {
	mu       sync.Mutex
	token    string
	expires  time.Time
	obtained time.Time
}

// set makes token the one in use; obtained is when the agent got it (now
// when zero: credentials stored before it was; and never later than now,
// which a clock set back since would make it, delaying renewal past the
// token's end).
func (t *parentToken) set(token string, expires, obtained time.Time) {
	if now := time.Now(); obtained.IsZero() || obtained.After(now) {
		obtained = now
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.token, t.expires, t.obtained = token, expires, obtained
}

func (t *parentToken) get() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.token
}

// renewDue: past half of the life it had when the agent got it, so the
// hub's own renewal at half of the full life is always there to fetch
// before this token ends.
func (t *parentToken) renewDue(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.expires.IsZero() {
		return false
	}
	return now.After(t.obtained.Add(t.expires.Sub(t.obtained) / 2))
}

func (t *parentToken) expiresAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expires
}

type bearerRoundTripper struct {
	token *parentToken
	next  http.RoundTripper
}

func (b bearerRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token.get())
	return b.next.RoundTrip(req)
}

// WrappedRoundTripper lets client-go reach the transport underneath to
// cancel a request.
func (b bearerRoundTripper) WrappedRoundTripper() http.RoundTripper { return b.next }

// credentialsConfig is the parent client configuration with the agent's
// current token.
func (a *Agent) credentialsConfig() *rest.Config {
	// The bundle in use when the config is made: the tunnel takes its TLS
	// configuration from here at each dial. The clients verify through
	// parentTransport, which follows the bundle as renewals change it.
	cfg := a.parentConfig("", a.trust.get())
	// These clients also watch (pullers, the agent's own request): a
	// client-side timeout would cut every watch after it, and each cut
	// is a new watch on the parent per informer. Requests are bounded by
	// their contexts and dead connections by HTTP/2 health checks.
	cfg.Timeout = 0
	cfg.WrapTransport = func(http.RoundTripper) http.RoundTripper {
		return bearerRoundTripper{token: &a.token, next: a.parentTransport()}
	}
	return cfg
}

// ensureKey loads the agent's private key from the credentials Secret, or
// makes one and stores it there first.
func (a *Agent) ensureKey(ctx context.Context) error {
	secret, err := a.child.CoreV1().Secrets(a.opts.AgentNamespace).Get(ctx, CredentialsSecret, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err == nil && len(secret.Data[keyPrivateKey]) > 0 {
		key, err := seal.ParsePrivateKey(secret.Data[keyPrivateKey])
		if err != nil {
			return fmt.Errorf("%s in Secret %s/%s: %w: delete the key to make a new one (the cluster then registers anew)",
				keyPrivateKey, a.opts.AgentNamespace, CredentialsSecret, err)
		}
		a.key = key
		return nil
	}
	key, err := seal.GenerateKey()
	if err != nil {
		return err
	}
	pemKey, err := seal.MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	if err := a.writeCredentialsSecret(ctx, map[string][]byte{keyPrivateKey: pemKey}); err != nil {
		return fmt.Errorf("storing the agent's key in the child: %w", err)
	}
	a.key = key
	return nil
}

// writeCredentialsSecret sets keys of the credentials Secret, keeping the
// others, and makes the Secret (and its namespace) when missing.
func (a *Agent) writeCredentialsSecret(ctx context.Context, data map[string][]byte) error {
	if _, err := a.child.CoreV1().Namespaces().Get(ctx, a.opts.AgentNamespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := a.child.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.opts.AgentNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	secrets := a.child.CoreV1().Secrets(a.opts.AgentNamespace)
	secret, err := secrets.Get(ctx, CredentialsSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: CredentialsSecret, Namespace: a.opts.AgentNamespace},
			Type:       corev1.SecretTypeOpaque,
			Data:       data,
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	secret = secret.DeepCopy()
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	for k, v := range data {
		secret.Data[k] = v
	}
	_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
	return err
}

// loadCredentials returns the stored credentials when they are for this
// parent and this cluster; nil otherwise (a different parent means a new registration).
func (a *Agent) loadCredentials(ctx context.Context) (*Credentials, error) {
	secret, err := a.child.CoreV1().Secrets(a.opts.AgentNamespace).Get(ctx, CredentialsSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d := secret.Data
	creds := &Credentials{
		ParentURL:          string(d[keyParentURL]),
		Token:              d[keyToken],
		CACertificate:      d[keyCACert],
		ClusterID:          types.UID(d[keyClusterID]),
		DedicatedNamespace: string(d[keyDedicatedNamespace]),
		ManagedClusterName: string(d[keyManagedCluster]),
	}
	if creds.ParentURL != a.parentURL || creds.ClusterID != a.clusterID {
		return nil, nil
	}
	if len(creds.Token) == 0 || creds.DedicatedNamespace == "" || creds.ManagedClusterName == "" {
		return nil, errors.New("stored credentials are incomplete")
	}
	if exp := string(d[keyTokenExpiration]); exp != "" {
		if creds.TokenExpiration, err = time.Parse(time.RFC3339, exp); err != nil {
			return nil, fmt.Errorf("stored %s %q: %w", keyTokenExpiration, exp, err)
		}
	}
	if got := string(d[keyTokenObtained]); got != "" {
		// Only a hint for when to renew: one that cannot be read counts as
		// missing rather than costing credentials that work.
		if creds.TokenObtained, err = time.Parse(time.RFC3339, got); err != nil {
			klog.FromContext(ctx).Error(err, "Ignoring the stored time the token was obtained; renewal falls due from now", "key", keyTokenObtained)
			creds.TokenObtained = time.Time{}
		}
	}
	return creds, nil
}

func (a *Agent) storeCredentials(ctx context.Context, creds *Credentials) error {
	data := map[string][]byte{
		keyParentURL:          []byte(creds.ParentURL),
		keyToken:              creds.Token,
		keyCACert:             creds.CACertificate,
		keyClusterID:          []byte(creds.ClusterID),
		keyDedicatedNamespace: []byte(creds.DedicatedNamespace),
		keyManagedCluster:     []byte(creds.ManagedClusterName),
	}
	if !creds.TokenExpiration.IsZero() {
		data[keyTokenExpiration] = []byte(creds.TokenExpiration.UTC().Format(time.RFC3339))
	}
	if !creds.TokenObtained.IsZero() {
		data[keyTokenObtained] = []byte(creds.TokenObtained.UTC().Format(time.RFC3339))
	}
	return a.writeCredentialsSecret(ctx, data)
}

// openAnswer turns an approved request into credentials, if it was sealed to
// this agent's key. A request made with another key is a cluster that lost
// its key (re-installed with its namespace deleted) or someone else who
// claimed this cluster's id first: either way only an admin can tell, and
// only deleting the request lets this cluster register again.
func (a *Agent) openAnswer(crr *clusterv1beta1.ClusterRegistrationRequest) (*Credentials, error) {
	mine, err := seal.MarshalPublicKey(a.key.PublicKey())
	if err != nil {
		return nil, err
	}
	if !seal.SamePublicKey(crr.Spec.PublicKey, mine) {
		return nil, fmt.Errorf("ClusterRegistrationRequest %s was made with another key than this agent's: this cluster lost its "+
			"key (Secret %s/%s) since it registered, or someone else claimed its cluster id; an admin of the parent who has "+
			"checked which must delete the request (kubectl delete clsrr %s) to let this agent register again",
			crr.Name, a.opts.AgentNamespace, CredentialsSecret, crr.Name)
	}
	token, err := openToken(a.key, crr)
	if err != nil {
		return nil, err
	}
	creds := &Credentials{
		ParentURL:          a.parentURL,
		Token:              token,
		CACertificate:      crr.Status.CACertificate,
		ClusterID:          a.clusterID,
		DedicatedNamespace: crr.Status.DedicatedNamespace,
		ManagedClusterName: crr.Status.ManagedClusterName,
	}
	if t := crr.Status.TokenExpirationTimestamp; t != nil {
		creds.TokenExpiration = t.Time
	}
	if len(creds.CACertificate) == 0 {
		creds.CACertificate = a.parentCA
	}
	return creds, nil
}

func openToken(key *ecdh.PrivateKey, crr *clusterv1beta1.ClusterRegistrationRequest) ([]byte, error) {
	token, err := seal.Open(key, crr.Status.SealedToken, []byte(crr.Name))
	if err != nil {
		return nil, fmt.Errorf("status.sealedToken of ClusterRegistrationRequest %s: %w", crr.Name, err)
	}
	return token, nil
}

// renewToken fetches the token the hub renewed in this cluster's request,
// once the current one is past half its life, and stores it with the
// parent's CA bundle the answer carries (renewedBundle). It runs at each
// heartbeat; a failure is retried at the next.
func (a *Agent) renewToken(ctx context.Context) {
	if !a.token.renewDue(time.Now()) {
		return
	}
	logger := klog.FromContext(ctx)
	name := clusterv1beta1.NamePrefix + string(a.clusterID)
	crr, err := a.parent.ClustersV1beta1().ClusterRegistrationRequests().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		logger.Error(err, "Reading this cluster's registration for a renewed token; will retry", "expires", a.token.expiresAt())
		return
	}
	creds, err := a.openAnswer(crr)
	if err != nil {
		logger.Error(err, "Opening the renewed token; will retry", "expires", a.token.expiresAt())
		return
	}
	if !creds.TokenExpiration.After(a.token.expiresAt()) {
		return // the hub has not renewed it yet
	}
	previous := a.trust.get()
	if !a.renewedBundle(ctx, creds) {
		return
	}
	creds.TokenObtained = time.Now()
	if err := a.storeCredentials(ctx, creds); err != nil {
		logger.Error(err, "Storing the renewed token; will retry")
		return
	}
	a.token.set(string(creds.Token), creds.TokenExpiration, creds.TokenObtained)
	a.trust.set(creds.CACertificate)
	logger.Info("Renewed the parent token", "expires", creds.TokenExpiration, "newCABundle", !bytes.Equal(previous, creds.CACertificate))
}

// forgetBootstrapToken removes the bootstrap token from the registration
// Secret once this cluster holds its own credentials: the token admits any
// new cluster, and a child that is compromised later must not hand it out.
func (a *Agent) forgetBootstrapToken(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if a.opts.BootstrapToken != "" {
		logger.Info("Warning: --bootstrap-token is still in this agent's arguments; remove it now that the cluster is registered")
	}
	ns, name, _ := strings.Cut(a.opts.RegistrationSecret, "/")
	secrets := a.child.CoreV1().Secrets(ns)
	secret, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	if err == nil && len(secret.Data[keyRegToken]) == 0 {
		return
	}
	if err == nil {
		secret = secret.DeepCopy()
		delete(secret.Data, keyRegToken)
		_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
	}
	if err != nil {
		logger.Error(err, "Removing the bootstrap token from the registration Secret failed; remove it by hand", "secret", a.opts.RegistrationSecret)
		return
	}
	logger.Info("Removed the bootstrap token from the registration Secret", "secret", a.opts.RegistrationSecret)
}
