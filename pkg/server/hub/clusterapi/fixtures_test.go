package clusterapi

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/record"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/server/hub/certs"
)

const (
	testNamespace  = "capi-fleet"
	managementUID  = "management-kube-system-uid"
	testParentURL  = "https://parent.example.com:6443"
	testRetryBase  = 5 * time.Second
	testRetryLimit = 40 * time.Second
)

// fakeChild is a discovered cluster: its id, what it refuses, and what was
// applied to it.
type fakeChild struct {
	id       string
	idErr    error
	applyErr error
	mu       sync.Mutex
	applies  [][]*unstructured.Unstructured
}

func (f *fakeChild) ClusterID(context.Context) (string, error) { return f.id, f.idErr }

func (f *fakeChild) Apply(_ context.Context, objs []*unstructured.Unstructured) error {
	if f.applyErr != nil {
		return f.applyErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies = append(f.applies, objs)
	return nil
}

func (f *fakeChild) applied() [][]*unstructured.Unstructured {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applies)
}

// harness is a management cluster, a parent and the discovered clusters,
// all fakes, with a controller over them whose syncs the test calls.
type harness struct {
	t          *testing.T
	ctx        context.Context
	mgmtKube   *kubefake.Clientset
	mgmtDyn    *dynamicfake.FakeDynamicClient
	mgmtMeta   *metadatafake.FakeMetadataClient
	parentKube *kubefake.Clientset
	clusternet *clusternetfake.Clientset
	informers  externalversions.SharedInformerFactory
	// children by the server of their kubeconfig.
	children map[string]*fakeChild
	ctl      *Controller
	events   *record.FakeRecorder
	now      time.Time
	parentCA []byte
}

type harnessOption func(*Options)

func withNamespaces(ns ...string) harnessOption { return func(o *Options) { o.Namespaces = ns } }

// newHarness starts a harness whose management cluster holds objs
// (Clusters as unstructured, Secrets) and whose parent holds parent.
func newHarness(t *testing.T, mgmt []runtime.Object, parent []runtime.Object, opts ...harnessOption) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ca, err := certs.NewCA("parent-ca", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: ctx, children: map[string]*fakeChild{}, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), parentCA: ca.CertPEM}
	kubeObjs := []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: managementUID}}}
	var dynObjs, metaObjs []runtime.Object
	for _, o := range mgmt {
		switch o := o.(type) {
		case *unstructured.Unstructured:
			dynObjs = append(dynObjs, o)
		case *corev1.Secret:
			kubeObjs = append(kubeObjs, o)
			metaObjs = append(metaObjs, secretMetadata(o))
		default:
			t.Fatalf("management fixture %T", o)
		}
	}
	h.mgmtKube = kubefake.NewClientset(kubeObjs...)
	h.mgmtDyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{ClusterResource: "ClusterList"}, dynObjs...)
	metaScheme := metadatafake.NewTestScheme()
	metaScheme.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind("Secret"), &metav1.PartialObjectMetadata{})
	metaScheme.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind("SecretList"), &metav1.PartialObjectMetadataList{})
	h.mgmtMeta = metadatafake.NewSimpleMetadataClient(metaScheme, metaObjs...)
	var kubeParent, clusternetParent []runtime.Object
	for _, o := range parent {
		switch o.(type) {
		case *clusterv1beta1.ManagedCluster, *clusterv1beta1.ClusterRegistrationRequest:
			clusternetParent = append(clusternetParent, o)
		default:
			kubeParent = append(kubeParent, o)
		}
	}
	h.parentKube = kubefake.NewClientset(kubeParent...)
	h.clusternet = clusternetfake.NewClientset(clusternetParent...)
	h.informers = externalversions.NewSharedInformerFactory(h.clusternet, 0)
	o := &Options{Namespaces: []string{testNamespace}, ParentURL: testParentURL}
	for _, opt := range opts {
		opt(o)
	}
	h.ctl, err = New(Config{
		Options:    o,
		Parent:     &rest.Config{Host: "https://127.0.0.1:6443", TLSClientConfig: rest.TLSClientConfig{CAData: h.parentCA}, UserAgent: "clusternet-hub/test"},
		Kube:       h.parentKube,
		Clusternet: h.clusternet,
		Informers:  h.informers,
		Management: Management{Kube: h.mgmtKube, Dynamic: h.mgmtDyn, Metadata: h.mgmtMeta},
		NewChild:   h.newChild,
		Now:        func() time.Time { return h.now },
		RetryBase:  testRetryBase,
		RetryMax:   testRetryLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.events = record.NewFakeRecorder(100)
	h.ctl.events = h.events
	var wg sync.WaitGroup
	h.ctl.runInformers(ctx, &wg)
	h.informers.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		h.informers.Shutdown()
	})
	h.waitSynced()
	return h
}

func (h *harness) waitSynced() {
	h.t.Helper()
	var synced []cache.InformerSynced
	for _, m := range []map[string]cache.SharedIndexInformer{h.ctl.clusters, h.ctl.secrets} {
		for _, inf := range m {
			synced = append(synced, inf.HasSynced)
		}
	}
	if !cache.WaitForCacheSync(h.ctx.Done(), synced...) {
		h.t.Fatal("management caches did not sync")
	}
	for typ, ok := range h.informers.WaitForCacheSync(h.ctx.Done()) {
		if !ok {
			h.t.Fatalf("parent cache of %v did not sync", typ)
		}
	}
}

func (h *harness) newChild(cfg *rest.Config) (Child, error) {
	c, ok := h.children[cfg.Host]
	if !ok {
		return nil, fmt.Errorf("no test cluster at %s", cfg.Host)
	}
	return c, nil
}

// child adds a discovered cluster at server with cluster id id.
func (h *harness) child(server, id string) *fakeChild {
	c := &fakeChild{id: id}
	h.children[server] = c
	return c
}

// sync runs one sync of key and returns when it asks to look again.
func (h *harness) sync(key string) time.Duration {
	h.t.Helper()
	again, err := h.ctl.sync(h.ctx, key)
	if err != nil {
		h.t.Fatalf("sync %s: %v", key, err)
	}
	return again
}

// takeEvents drains the events recorded so far.
func (h *harness) takeEvents() []string {
	var out []string
	for {
		select {
		case e := <-h.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// eventually waits until cond holds (a cache caught up).
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a cache, not ordering goroutines
	}
}

func (h *harness) tokenSecrets() []corev1.Secret {
	h.t.Helper()
	list, err := h.parentKube.CoreV1().Secrets("kube-system").List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return list.Items
}

// clusterFixture is a cluster-api Cluster as its controllers leave it.
type clusterFixture struct {
	name, uid   string
	initialized bool
	phase       string
	deleting    bool
}

func (f clusterFixture) build() *unstructured.Unstructured {
	c := &clusterv1.Cluster{
		TypeMeta:   metav1.TypeMeta{APIVersion: clusterv1.GroupVersion.String(), Kind: "Cluster"},
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: f.name, UID: types.UID(f.uid)},
	}
	c.Status.Phase = f.phase
	if f.initialized {
		c.Status.Conditions = []metav1.Condition{{Type: clusterv1.ClusterControlPlaneInitializedCondition, Status: metav1.ConditionTrue,
			Reason: clusterv1.ClusterControlPlaneInitializedReason, LastTransitionTime: metav1.Now()}}
	}
	if f.deleting {
		c.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		c.Finalizers = []string{"cluster.cluster.x-k8s.io"}
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c)
	if err != nil {
		panic(err)
	}
	return &unstructured.Unstructured{Object: obj}
}

// provisioned is a Cluster whose control plane is initialized.
func provisioned(name, uid string) *unstructured.Unstructured {
	return clusterFixture{name: name, uid: uid, initialized: true, phase: "Provisioned"}.build()
}

// kubeconfigSecret is cluster's <name>-kubeconfig Secret reaching server
// with an inline token, as cluster-api writes it.
func kubeconfigSecret(cluster, server string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: KubeconfigSecretName(cluster), UID: types.UID("secret-" + cluster),
			ResourceVersion: "1", Labels: map[string]string{clusterv1.ClusterNameLabel: cluster}},
		Type: clusterv1.ClusterSecretType,
		Data: map[string][]byte{kubeconfigKey: kubeconfigFor(server, nil)},
	}
}

// kubeconfigFor is a kubeconfig of server; edit changes its user.
func kubeconfigFor(server string, edit func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)) []byte {
	cfg := clientcmdapi.NewConfig()
	cluster := &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: []byte("ca")}
	user := &clientcmdapi.AuthInfo{Token: "admin-token"}
	if edit != nil {
		edit(cluster, user)
	}
	cfg.Clusters["workload"] = cluster
	cfg.AuthInfos["workload-admin"] = user
	cfg.Contexts["workload-admin@workload"] = &clientcmdapi.Context{Cluster: "workload", AuthInfo: "workload-admin"}
	cfg.CurrentContext = "workload-admin@workload"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		panic(err)
	}
	return b
}

func secretMetadata(s *corev1.Secret) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: s.ObjectMeta}
}

// registeredCluster is the ManagedCluster the approver made for id.
func registeredCluster(id string, labels map[string]string) *clusterv1beta1.ManagedCluster {
	l := map[string]string{clusterv1beta1.LabelClusterID: id}
	for k, v := range labels {
		l[k] = v
	}
	return &clusterv1beta1.ManagedCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "clusternet-" + id[:5], Name: "mc-" + id[:5], Labels: l},
		Spec:       clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id)},
	}
}

// objectOf is the applied object of kind, or nil.
func objectOf(objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	return nil
}

// containerArgs are the args of a Deployment's first container.
func containerArgs(t *testing.T, deploy *unstructured.Unstructured) []string {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		t.Fatal("the Deployment has no container")
	}
	raw, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	return raw
}

// reasons are the reasons of events as the fake recorder writes them.
func reasons(events []string) []string {
	out := make([]string, len(events))
	for i, e := range events {
		f := strings.Fields(e)
		if len(f) > 1 {
			out[i] = f[0] + " " + f[1]
		}
	}
	return out
}
