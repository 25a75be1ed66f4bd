// Package bootstraptoken makes the bootstrap tokens clusternet-agent
// registers with: a fresh random token per use, stored as a
// bootstrap.kubernetes.io/token Secret in the parent's kube-system, with an
// expiry, and bound to the one group that may only ask to register.
//
// The format and Secret keys are the ones kube-apiserver's bootstrap token
// authenticator reads (k8s.io/cluster-bootstrap defines them; that module is
// not a dependency of this one, so the few constants are repeated here).
package bootstraptoken

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// RegisterClusterGroup is the extra group of the tokens this package
	// makes. deploy/hub/rbac.yaml binds it to creating and getting
	// ClusterRegistrationRequests, and nothing else.
	RegisterClusterGroup = "system:bootstrappers:clusternet:register-cluster-token"

	// Namespace is where kube-apiserver looks for bootstrap token Secrets.
	Namespace = metav1.NamespaceSystem
	// SecretPrefix starts every bootstrap token Secret's name; the token id follows.
	SecretPrefix = "bootstrap-token-"

	// DefaultTTL is how long a token lives unless told otherwise, as kubeadm's.
	DefaultTTL = 24 * time.Hour

	idLength         = 6
	secretLength     = 16
	alphabet         = "abcdefghijklmnopqrstuvwxyz0123456789"
	extraGroupPrefix = "system:bootstrappers:"
	createAttempts   = 3
)

// The Secret's keys, as the authenticator reads them.
const (
	KeyTokenID     = "token-id"
	KeyTokenSecret = "token-secret"
	KeyExpiration  = "expiration"
	KeyDescription = "description"
	KeyExtraGroups = "auth-extra-groups"
	KeyUsageAuthn  = "usage-bootstrap-authentication"
)

// tokenPattern is the shape kube-apiserver accepts: [a-z0-9]{6}.[a-z0-9]{16}.
var tokenPattern = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)

// Token is a bootstrap token: a public id, which names its Secret, and a
// secret part.
type Token struct {
	ID, Secret string
}

// String is the token as a client sends it: "<id>.<secret>".
func (t Token) String() string { return t.ID + "." + t.Secret }

// SecretName is the name of the token's Secret in Namespace.
func (t Token) SecretName() string { return SecretPrefix + t.ID }

// Generate returns a new random token from crypto/rand.
func Generate() (Token, error) { return generate(rand.Reader) }

func generate(r io.Reader) (Token, error) {
	s, err := randomString(r, idLength+secretLength)
	if err != nil {
		return Token{}, fmt.Errorf("generating a bootstrap token: %w", err)
	}
	return Token{ID: s[:idLength], Secret: s[idLength:]}, nil
}

// randomString returns n characters of alphabet, each equally likely: bytes
// of 252 and above are dropped, so that byte % 36 has no bias.
func randomString(r io.Reader, n int) (string, error) {
	const limit = 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// Parse reads a token from its "<id>.<secret>" form.
func Parse(s string) (Token, error) {
	m := tokenPattern.FindStringSubmatch(s)
	if m == nil {
		return Token{}, errors.New("a bootstrap token is 6 and 16 characters of [a-z0-9] joined by a dot, like abcdef.0123456789abcdef")
	}
	return Token{ID: m[1], Secret: m[2]}, nil
}

// Options describe a token's Secret.
type Options struct {
	// TTL is how long the token is accepted; 0 means it never expires
	// (kube-apiserver accepts it until its Secret is deleted).
	TTL time.Duration
	// Description is kept in the Secret for whoever finds it later.
	Description string
	// Groups are the token's extra groups; empty means RegisterClusterGroup.
	Groups []string
	// Labels go on the Secret, so that its maker can find its tokens again.
	Labels map[string]string
	// Now is the clock the expiration is counted from; nil means time.Now.
	Now func() time.Time
}

// Validate checks o without a cluster.
func (o Options) Validate() error {
	if o.TTL < 0 {
		return fmt.Errorf("ttl %q is negative: give a duration such as 24h, or 0 for a token that never expires", o.TTL)
	}
	for _, g := range o.Groups {
		// The authenticator refuses a token whose groups are outside this prefix.
		if !strings.HasPrefix(g, extraGroupPrefix) || g == extraGroupPrefix {
			return fmt.Errorf("group %q must start with %q: kube-apiserver accepts no other extra groups for bootstrap tokens", g, extraGroupPrefix)
		}
	}
	return nil
}

// Expiration is when a token made now with o stops being accepted; the
// zero time for a token without expiry.
func (o Options) Expiration() time.Time {
	if o.TTL == 0 {
		return time.Time{}
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	// RFC 3339 has seconds: round so that what is stored is what is reported.
	return now().Add(o.TTL).UTC().Truncate(time.Second)
}

// NewSecret returns the Secret that makes t a bootstrap token as o says.
func NewSecret(t Token, o Options) *corev1.Secret {
	groups := o.Groups
	if len(groups) == 0 {
		groups = []string{RegisterClusterGroup}
	}
	data := map[string][]byte{
		KeyTokenID:     []byte(t.ID),
		KeyTokenSecret: []byte(t.Secret),
		KeyUsageAuthn:  []byte("true"),
		KeyExtraGroups: []byte(strings.Join(groups, ",")),
	}
	if o.Description != "" {
		data[KeyDescription] = []byte(o.Description)
	}
	if exp := o.Expiration(); !exp.IsZero() {
		data[KeyExpiration] = []byte(exp.Format(time.RFC3339))
	}
	var labels map[string]string
	if len(o.Labels) > 0 {
		labels = make(map[string]string, len(o.Labels))
		for k, v := range o.Labels {
			labels[k] = v
		}
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: t.SecretName(), Namespace: Namespace, Labels: labels},
		Type:       corev1.SecretTypeBootstrapToken,
		Data:       data,
	}
}

// Create generates a token and stores its Secret through client (which
// needs create on secrets in kube-system). A token id already taken, which
// is unlikely but possible, gets a new token rather than an overwrite.
func Create(ctx context.Context, client kubernetes.Interface, o Options) (Token, *corev1.Secret, error) {
	return create(ctx, client, o, rand.Reader)
}

func create(ctx context.Context, client kubernetes.Interface, o Options, r io.Reader) (Token, *corev1.Secret, error) {
	if err := o.Validate(); err != nil {
		return Token{}, nil, err
	}
	for attempt := 1; ; attempt++ {
		t, err := generate(r)
		if err != nil {
			return Token{}, nil, err
		}
		created, err := client.CoreV1().Secrets(Namespace).Create(ctx, NewSecret(t, o), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) && attempt < createAttempts {
			continue
		}
		if err != nil {
			return Token{}, nil, err
		}
		return t, created, nil
	}
}
