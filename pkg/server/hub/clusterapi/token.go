package clusterapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/bootstraptoken"
)

// TokenTTL is how long a discovered cluster's bootstrap token is accepted.
// The hub makes a fresh one, and installs it again, when less than half is
// left and the cluster has not registered yet; it deletes it once the
// cluster has registered (the agent then holds its own credentials).
const TokenTTL = time.Hour

// createdBy marks the bootstrap tokens this controller makes.
const createdBy = "clusternet-hub"

// tokens are the dedicated bootstrap tokens of discovered clusters: one per
// Cluster, in the parent's kube-system as every bootstrap token, labelled
// with its binding and the cluster id it was made for.
type tokens struct {
	kube kubernetes.Interface
	now  func() time.Time
}

// token is a dedicated token and when to make the next one.
type token struct {
	bootstraptoken.Token
	renewAt time.Time
}

// ensure returns b's token for cluster id, valid for at least half of
// TokenTTL: the existing one, or a new one (the others of b deleted).
func (t tokens) ensure(ctx context.Context, b binding, clusterID string) (token, error) {
	secrets := t.kube.CoreV1().Secrets(bootstraptoken.Namespace)
	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: mine(boundTo(b.management, b.uid)).String()})
	if err != nil {
		return token{}, fmt.Errorf("listing the bootstrap tokens of Cluster %s/%s: %w", b.namespace, b.name, err)
	}
	for i := range list.Items {
		if tok, ok := t.usable(&list.Items[i], clusterID); ok {
			return tok, nil
		}
	}
	lbls := b.labels()
	maps.Copy(lbls, map[string]string{clusterv1beta1.LabelCreatedBy: createdBy, clusterv1beta1.LabelClusterID: clusterID})
	opts := bootstraptoken.Options{
		TTL:         TokenTTL,
		Description: fmt.Sprintf("made by clusternet-hub for cluster-api Cluster %s/%s (cluster id %s); deleted once it registered", b.namespace, b.name, clusterID),
		Labels:      lbls,
		Now:         t.now,
	}
	made, _, err := bootstraptoken.Create(ctx, t.kube, opts)
	if err != nil {
		return token{}, fmt.Errorf("creating a bootstrap token for Cluster %s/%s: %w", b.namespace, b.name, err)
	}
	for _, old := range list.Items {
		if err := secrets.Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return token{}, fmt.Errorf("deleting the replaced bootstrap token %s: %w", old.Name, err)
		}
	}
	return token{Token: made, renewAt: opts.Expiration().Add(-TokenTTL / 2)}, nil
}

// usable reads s as a token for clusterID with at least half its life left.
func (t tokens) usable(s *corev1.Secret, clusterID string) (token, bool) {
	if s.Labels[clusterv1beta1.LabelClusterID] != clusterID || s.DeletionTimestamp != nil {
		return token{}, false
	}
	exp, err := time.Parse(time.RFC3339, string(s.Data[bootstraptoken.KeyExpiration]))
	if err != nil {
		return token{}, false
	}
	parsed, err := bootstraptoken.Parse(string(s.Data[bootstraptoken.KeyTokenID]) + "." + string(s.Data[bootstraptoken.KeyTokenSecret]))
	if err != nil || parsed.SecretName() != s.Name {
		return token{}, false
	}
	renewAt := exp.Add(-TokenTTL / 2)
	if !t.now().Before(renewAt) {
		return token{}, false
	}
	return token{Token: parsed, renewAt: renewAt}, true
}

// issuedBy says whether a token of b for clusterID was created no later
// than t (the ManagedCluster's creation): only then may the registration
// be the one b's agent made.
func (t tokens) issuedBy(ctx context.Context, b binding, clusterID string, at time.Time) (bool, error) {
	list, err := t.kube.CoreV1().Secrets(bootstraptoken.Namespace).List(ctx, metav1.ListOptions{LabelSelector: mine(boundTo(b.management, b.uid)).String()})
	if err != nil {
		return false, fmt.Errorf("listing the bootstrap tokens of Cluster %s/%s: %w", b.namespace, b.name, err)
	}
	for i := range list.Items {
		s := &list.Items[i]
		if s.Labels[clusterv1beta1.LabelClusterID] == clusterID && !s.CreationTimestamp.After(at) {
			return true, nil
		}
	}
	return false, nil
}

// deleteAll deletes what sel selects of this controller's tokens.
func (t tokens) deleteAll(ctx context.Context, sel labels.Selector) error {
	secrets := t.kube.CoreV1().Secrets(bootstraptoken.Namespace)
	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: mine(sel).String()})
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range list.Items {
		if err := secrets.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting bootstrap token %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// bound are the cluster ids sel's tokens were made for, with the UID of
// the Cluster each token is for.
func (t tokens) bound(ctx context.Context, sel labels.Selector) (map[string]types.UID, error) {
	list, err := t.kube.CoreV1().Secrets(bootstraptoken.Namespace).List(ctx, metav1.ListOptions{LabelSelector: mine(sel).String()})
	if err != nil {
		return nil, err
	}
	ids := map[string]types.UID{}
	for _, s := range list.Items {
		if id := s.Labels[clusterv1beta1.LabelClusterID]; id != "" {
			ids[id] = types.UID(s.Labels[LabelUID])
		}
	}
	return ids, nil
}

// mine narrows sel to the tokens this controller made.
func mine(sel labels.Selector) labels.Selector {
	req, err := labels.NewRequirement(clusterv1beta1.LabelCreatedBy, selection.Equals, []string{createdBy})
	if err != nil {
		panic(err) // constant, valid
	}
	return sel.Add(*req)
}
