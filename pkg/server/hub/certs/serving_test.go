package certs

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	certutil "k8s.io/client-go/util/cert"
	clocktesting "k8s.io/utils/clock/testing"
)

const day = 24 * time.Hour

func apiService(name string, insecure bool) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"group": "proxies.clusternet.io", "version": "v1alpha1"},
	}}
	if insecure {
		_ = unstructured.SetNestedField(u.Object, true, "spec", "insecureSkipTLSVerify")
	}
	return u
}

func webhookConfig() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "clusternet-hub-subscriptions"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			{Name: "subscriptions.apps.clusternet.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{Namespace: "clusternet-system", Name: "clusternet-hub"}}},
		},
	}
}

type fixture struct {
	kube    *fake.Clientset
	dyn     *dynamicfake.FakeDynamicClient
	clock   *clocktesting.FakeClock
	serving *Serving
	reloads atomic.Int32
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		kube:  fake.NewClientset(webhookConfig()),
		dyn:   dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), apiService("v1alpha1.proxies.clusternet.io", true)),
		clock: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
	}
	f.serving = f.newServing()
	f.serving.AddListener(listenerFunc(func() { f.reloads.Add(1) }))
	return f
}

func (f *fixture) newServing() *Serving {
	return NewServing(ServingOptions{
		Kube: f.kube, Dynamic: f.dyn, Namespace: "clusternet-system",
		DNSNames: []string{"clusternet-hub.clusternet-system.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		// v1alpha1.shadow is not installed (yet): it is skipped.
		APIServices: []string{"v1alpha1.proxies.clusternet.io", "v1alpha1.shadow"},
		Webhooks:    []string{"clusternet-hub-subscriptions"},
		Clock:       f.clock,
	})
}

type listenerFunc func()

func (l listenerFunc) Enqueue() { l() }

func (f *fixture) sync(t *testing.T) {
	t.Helper()
	if err := f.serving.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

func (f *fixture) secret(t *testing.T) *corev1.Secret {
	t.Helper()
	s, err := f.kube.CoreV1().Secrets("clusternet-system").Get(context.Background(), DefaultServingSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// published checks that every caBundle is the Secret's ca.crt and returns
// the CA certificates in it.
func (f *fixture) published(t *testing.T) []*x509.Certificate {
	t.Helper()
	want := f.secret(t).Data[KeyCACert]
	as, err := f.dyn.Resource(APIServiceResource).Get(context.Background(), "v1alpha1.proxies.clusternet.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := unstructured.NestedString(as.Object, "spec", "caBundle")
	if got != base64.StdEncoding.EncodeToString(want) {
		t.Errorf("APIService caBundle = %q, want the Secret's ca.crt", got)
	}
	if insecure, _, _ := unstructured.NestedBool(as.Object, "spec", "insecureSkipTLSVerify"); insecure {
		t.Error("APIService still has insecureSkipTLSVerify")
	}
	vwc, err := f.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), "clusternet-hub-subscriptions", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(vwc.Webhooks[0].ClientConfig.CABundle)); diff != "" {
		t.Errorf("webhook caBundle (-want +got):\n%s", diff)
	}
	if vwc.Webhooks[0].ClientConfig.Service == nil || vwc.Webhooks[0].ClientConfig.Service.Name != "clusternet-hub" {
		t.Errorf("webhook clientConfig.service lost by the patch: %+v", vwc.Webhooks[0].ClientConfig)
	}
	cas, err := certutil.ParseCertsPEM(want)
	if err != nil {
		t.Fatal(err)
	}
	return cas
}

// served parses the certificate the API server gets and checks it against
// the CA bundle.
func (f *fixture) served(t *testing.T, cas []*x509.Certificate) *x509.Certificate {
	t.Helper()
	certPEM, _ := f.serving.CurrentCertKeyContent()
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, DNSName: "clusternet-hub.clusternet-system.svc",
		CurrentTime: f.clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("served certificate does not verify with the published caBundle for the Service's name: %v", err)
	}
	return certs[0]
}

func TestServingMakesPublishesAndServes(t *testing.T) {
	f := newFixture(t)
	f.sync(t)
	cas := f.published(t)
	if len(cas) != 1 {
		t.Fatalf("caBundle holds %d CAs, want 1", len(cas))
	}
	cert := f.served(t, cas)
	if got, want := cert.NotAfter.Sub(f.clock.Now()), DefaultServingLifetime; got != want {
		t.Errorf("serving certificate lives %s, want %s", got, want)
	}
	if got := f.reloads.Load(); got != 1 {
		t.Errorf("API server told to reload %d times, want 1", got)
	}
	// Nothing due: a second sync changes nothing and patches nothing.
	f.kube.ClearActions()
	f.dyn.ClearActions()
	f.sync(t)
	for _, a := range append(f.kube.Actions(), f.dyn.Actions()...) {
		if a.GetVerb() != "get" {
			t.Errorf("sync with nothing due did %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	if got := f.reloads.Load(); got != 1 {
		t.Errorf("API server told to reload %d times, want still 1", got)
	}
}

func TestServingRotatesBeforeExpiry(t *testing.T) {
	f := newFixture(t)
	f.sync(t)
	first := f.served(t, f.published(t))
	ca0 := f.published(t)[0]

	// Before two thirds of 90 days: kept.
	f.clock.Step(59 * day)
	f.sync(t)
	if got := f.served(t, f.published(t)); !got.Equal(first) {
		t.Error("serving certificate replaced after 59 of 90 days")
	}
	// After: replaced, by the same CA, and the API server reloads it.
	f.clock.Step(2 * day)
	f.sync(t)
	second := f.served(t, f.published(t))
	if second.Equal(first) {
		t.Fatal("serving certificate not replaced after 61 of 90 days")
	}
	if second.CheckSignatureFrom(ca0) != nil {
		t.Error("serving certificate replaced by another CA while the CA was not due")
	}
	if got := f.reloads.Load(); got != 2 {
		t.Errorf("API server told to reload %d times, want 2", got)
	}

	// Past two thirds of the CA's year: a new CA; the old one stays in the
	// bundle (what it signed is still served elsewhere) and the serving
	// certificate moves to the new one.
	f.clock.Step(185 * day) // day 246
	f.sync(t)
	cas := f.published(t)
	if len(cas) != 2 || !cas[1].Equal(ca0) || cas[0].Equal(ca0) {
		t.Fatalf("caBundle after the CA rotation = %d CAs (old one second: %v), want the new CA then the old one", len(cas), len(cas) == 2 && cas[1].Equal(ca0))
	}
	if third := f.served(t, cas); third.CheckSignatureFrom(cas[0]) != nil {
		t.Error("serving certificate not signed by the new CA")
	}

	// Once the old CA expired, it leaves the bundle.
	f.clock.Step(120 * day) // day 366
	f.sync(t)
	if cas := f.published(t); len(cas) != 1 || cas[0].Equal(ca0) {
		t.Errorf("caBundle after the old CA expired holds %d CAs, want only the new one", len(cas))
	}
}

func TestServingReplicasRacingShareOneSecret(t *testing.T) {
	f := newFixture(t)
	// The other replica's Secret, made against a parent of its own.
	elsewhere := newFixture(t)
	elsewhere.sync(t)
	theirs := elsewhere.secret(t).DeepCopy()
	theirs.ResourceVersion = ""
	// It creates the Secret between this replica's read and its create:
	// this one gets AlreadyExists and must serve the other's.
	var raced atomic.Bool
	f.kube.PrependReactor("create", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		if raced.Swap(true) {
			return false, nil, nil
		}
		if err := f.kube.Tracker().Add(theirs); err != nil {
			t.Errorf("the other replica's create: %v", err)
		}
		return true, nil, apierrors.NewAlreadyExists(corev1.Resource("secrets"), DefaultServingSecret)
	})
	f.sync(t)
	if !raced.Load() {
		t.Fatal("no create was attempted")
	}
	mine, _ := f.serving.CurrentCertKeyContent()
	if len(mine) == 0 || string(mine) != string(theirs.Data[KeyTLSCert]) {
		t.Error("replicas that raced to create the Secret serve different certificates")
	}
	f.published(t)
}

func TestServingRotationConflictLeavesTheWinner(t *testing.T) {
	f := newFixture(t)
	f.sync(t)
	other := f.newServing()
	if err := other.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(61 * day)
	// Both replicas find the certificate due; the other writes first, so
	// this one's update (with the resourceVersion it read) conflicts.
	f.kube.PrependReactor("update", "secrets", func(a clienttesting.Action) (bool, runtime.Object, error) {
		s := a.(clienttesting.UpdateAction).GetObject().(*corev1.Secret)
		obj, err := f.kube.Tracker().Get(corev1.SchemeGroupVersion.WithResource("secrets"), s.Namespace, s.Name)
		if err != nil {
			return true, nil, err
		}
		if current := obj.(*corev1.Secret); current.ResourceVersion != s.ResourceVersion {
			return true, nil, apierrors.NewConflict(corev1.Resource("secrets"), s.Name, nil)
		}
		s = s.DeepCopy()
		s.ResourceVersion += "1"
		return true, s, f.kube.Tracker().Update(corev1.SchemeGroupVersion.WithResource("secrets"), s, s.Namespace)
	})
	if err := other.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	winner, _ := other.CurrentCertKeyContent()
	// This replica read before the other wrote: simulate by syncing from a
	// stale resourceVersion, which must fail and not overwrite.
	stale := f.secret(t).DeepCopy()
	stale.ResourceVersion = "stale"
	if _, err := f.serving.update(context.Background(), stale); !apierrors.IsConflict(err) {
		t.Fatalf("update from a stale read: %v, want a conflict", err)
	}
	f.sync(t)
	mine, _ := f.serving.CurrentCertKeyContent()
	if string(mine) != string(winner) {
		t.Error("after the conflict this replica serves another certificate than the winner's")
	}
}
