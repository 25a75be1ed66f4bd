package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Defaults of the serving certificate's lifetimes: each is replaced once
// two thirds of it have passed.
const (
	DefaultCALifetime      = 365 * 24 * time.Hour
	DefaultServingLifetime = 90 * 24 * time.Hour
	// DefaultServingSecret holds the serving CA and certificate.
	DefaultServingSecret = "clusternet-hub-serving-cert"
)

// APIServiceResource is apiregistration.k8s.io/v1 apiservices.
var APIServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// ServingOptions say what certificate to serve and whose caBundle to keep.
type ServingOptions struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Namespace and Secret hold the CA and serving certificate all
	// replicas share.
	Namespace, Secret string
	DNSNames          []string
	IPs               []net.IP
	// APIServices and Webhooks (ValidatingWebhookConfigurations; every
	// webhook in them) get the CA bundle. Missing ones are skipped: they
	// may be installed after the hub.
	APIServices []string
	Webhooks    []string
	// CALifetime and ServingLifetime default to DefaultCALifetime and
	// DefaultServingLifetime.
	CALifetime, ServingLifetime time.Duration
	Clock                       clock.PassiveClock
}

// Serving keeps the hub's serving certificate: it makes it, rotates it and
// its CA before they expire, keeps the caBundle of the APIServices and
// webhooks current, and hands the certificate to the API server
// (a dynamiccertificates.CertKeyContentProvider, reloaded without restart).
type Serving struct {
	o ServingOptions

	mu        sync.Mutex
	cert, key []byte
	caBundle  []byte
	listeners []dynamiccertificates.Listener
}

var _ dynamiccertificates.CertKeyContentProvider = &Serving{}

// NewServing returns a manager; call Sync once before serving, then Run.
func NewServing(o ServingOptions) *Serving {
	if o.CALifetime == 0 {
		o.CALifetime = DefaultCALifetime
	}
	if o.ServingLifetime == 0 {
		o.ServingLifetime = DefaultServingLifetime
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Secret == "" {
		o.Secret = DefaultServingSecret
	}
	return &Serving{o: o}
}

// Name names the certificate in the API server's logs.
func (s *Serving) Name() string { return "hub-managed:" + s.o.Namespace + "/" + s.o.Secret }

// CurrentCertKeyContent is the certificate served now.
func (s *Serving) CurrentCertKeyContent() ([]byte, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert, s.key
}

// CABundle is the CA bundle the APIServices and webhooks get.
func (s *Serving) CABundle() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.caBundle
}

// AddListener registers the API server's reload.
func (s *Serving) AddListener(l dynamiccertificates.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(s.listeners, l)
}

// Run syncs every interval until ctx ends: a rotation another replica made
// is picked up within it.
func (s *Serving) Run(ctx context.Context, interval time.Duration) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := s.Sync(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Keeping the hub's serving certificate")
		}
	}, interval)
}

// due says whether two thirds of cert's life have passed.
func due(cert *x509.Certificate, now time.Time) bool {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return !now.Before(cert.NotBefore.Add(life * 2 / 3))
}

// Sync makes, rotates and publishes: the CA (bundle: the new CA and the
// previous ones not yet expired, so certificates they signed stay trusted
// meanwhile), then every caBundle, then, only once all caBundles trust the
// current CA, the serving certificate.
func (s *Serving) Sync(ctx context.Context) error {
	now := s.o.Clock.Now()
	secret, err := EnsureSecret(ctx, s.o.Kube.CoreV1(), s.o.Namespace, s.o.Secret, func() (map[string][]byte, error) {
		ca, err := NewCA("clusternet-hub-serving-ca", now, s.o.CALifetime)
		if err != nil {
			return nil, err
		}
		cert, key, err := ca.Issue(s.leaf(), now, s.o.ServingLifetime)
		if err != nil {
			return nil, err
		}
		return map[string][]byte{KeyCACert: ca.CertPEM, KeyCAKey: ca.KeyPEM, KeyTLSCert: cert, KeyTLSKey: key}, nil
	})
	if err != nil {
		return err
	}
	ca, err := ParseCA(secret.Data[KeyCACert], secret.Data[KeyCAKey])
	if err != nil {
		return fmt.Errorf("serving certificate Secret %s/%s: %w (delete it to have the hub make a new one)", s.o.Namespace, s.o.Secret, err)
	}
	bundle, err := certutil.ParseCertsPEM(secret.Data[KeyCACert])
	if err != nil {
		return fmt.Errorf("serving certificate Secret %s/%s: %s: %w", s.o.Namespace, s.o.Secret, KeyCACert, err)
	}
	// 1. The CA: rotate it, and drop expired ones from the bundle.
	trusted := [][]byte{}
	if due(ca.Cert, now) {
		if ca, err = NewCA("clusternet-hub-serving-ca", now, s.o.CALifetime); err != nil {
			return err
		}
		trusted = append(trusted, ca.CertPEM)
	}
	for _, c := range bundle {
		if now.Before(c.NotAfter) {
			trusted = append(trusted, encodeCert(c.Raw))
		}
	}
	caBundle := bytes.Join(trusted, nil)
	if !bytes.Equal(caBundle, secret.Data[KeyCACert]) || !bytes.Equal(ca.KeyPEM, secret.Data[KeyCAKey]) {
		secret = secret.DeepCopy()
		secret.Data[KeyCACert], secret.Data[KeyCAKey] = caBundle, ca.KeyPEM
		if secret, err = s.update(ctx, secret); err != nil {
			return err
		}
	}
	// 2. Every caBundle.
	if err := s.publish(ctx, caBundle); err != nil {
		s.load(secret)
		return err
	}
	// 3. The serving certificate.
	if s.servingDue(secret.Data[KeyTLSCert], ca, now) {
		cert, key, err := ca.Issue(s.leaf(), now, s.o.ServingLifetime)
		if err != nil {
			return err
		}
		secret = secret.DeepCopy()
		secret.Data[KeyTLSCert], secret.Data[KeyTLSKey] = cert, key
		if secret, err = s.update(ctx, secret); err != nil {
			return err
		}
		klog.FromContext(ctx).Info("Rotated the hub's serving certificate", "secret", klog.KObj(secret))
	}
	s.load(secret)
	return nil
}

func (s *Serving) leaf() Leaf {
	return Leaf{CommonName: "clusternet-hub", DNSNames: s.o.DNSNames, IPs: s.o.IPs, Server: true}
}

// servingDue says whether the serving certificate must be replaced: none,
// two thirds of its life gone, not signed by the current CA, or not naming
// what it must.
func (s *Serving) servingDue(certPEM []byte, ca *CA, now time.Time) bool {
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil || len(certs) == 0 {
		return true
	}
	c := certs[0]
	if due(c, now) || c.CheckSignatureFrom(ca.Cert) != nil {
		return true
	}
	if !slices.Equal(c.DNSNames, s.o.DNSNames) || len(c.IPAddresses) != len(s.o.IPs) {
		return true
	}
	for i := range c.IPAddresses {
		if !c.IPAddresses[i].Equal(s.o.IPs[i]) {
			return true
		}
	}
	return false
}

// update writes secret with its resourceVersion as precondition: of two
// replicas rotating at once, one wins and the other reads its result at
// the next sync.
func (s *Serving) update(ctx context.Context, secret *corev1.Secret) (*corev1.Secret, error) {
	updated, err := s.o.Kube.CoreV1().Secrets(secret.Namespace).Update(ctx, secret, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	return updated, nil
}

// load serves what secret holds, telling the API server when it changed.
func (s *Serving) load(secret *corev1.Secret) {
	s.mu.Lock()
	cert, key := secret.Data[KeyTLSCert], secret.Data[KeyTLSKey]
	changed := !bytes.Equal(cert, s.cert) || !bytes.Equal(key, s.key)
	s.cert, s.key, s.caBundle = cert, key, secret.Data[KeyCACert]
	listeners := slices.Clone(s.listeners)
	s.mu.Unlock()
	if changed {
		for _, l := range listeners {
			l.Enqueue()
		}
	}
}

// publish sets caBundle on the APIServices (and clears
// insecureSkipTLSVerify, which cannot stand beside one) and on every
// webhook of the webhook configurations, patching only what differs.
func (s *Serving) publish(ctx context.Context, caBundle []byte) error {
	var errs []error
	for _, name := range s.o.APIServices {
		apiService, err := s.o.Dynamic.Resource(APIServiceResource).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading APIService %s: %w", name, err))
			continue
		}
		current, _, _ := unstructured.NestedString(apiService.Object, "spec", "caBundle")
		insecure, _, _ := unstructured.NestedBool(apiService.Object, "spec", "insecureSkipTLSVerify")
		want := base64.StdEncoding.EncodeToString(caBundle)
		if current == want && !insecure {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"caBundle": want, "insecureSkipTLSVerify": false}})
		if _, err := s.o.Dynamic.Resource(APIServiceResource).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("setting the caBundle of APIService %s: %w", name, err))
			continue
		}
		klog.FromContext(ctx).Info("Set the caBundle of an APIService", "apiService", name)
	}
	for _, name := range s.o.Webhooks {
		vwc, err := s.o.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading ValidatingWebhookConfiguration %s: %w", name, err))
			continue
		}
		var hooks []map[string]any
		for _, h := range vwc.Webhooks {
			if !bytes.Equal(h.ClientConfig.CABundle, caBundle) {
				hooks = append(hooks, map[string]any{"name": h.Name, "clientConfig": map[string]any{"caBundle": caBundle}})
			}
		}
		if len(hooks) == 0 {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"webhooks": hooks})
		if _, err := s.o.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("setting the caBundle of ValidatingWebhookConfiguration %s: %w", name, err))
			continue
		}
		klog.FromContext(ctx).Info("Set the caBundle of a webhook configuration", "validatingWebhookConfiguration", name)
	}
	return errors.Join(errs...)
}
