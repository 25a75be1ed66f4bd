package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/seal"
)

const testClusterID = "dc91021d-2361-4f6d-a404-7c33b9e01118"

func newTestAgent(t *testing.T, objs ...*corev1.Secret) (*Agent, *kubefake.Clientset) {
	t.Helper()
	child := kubefake.NewClientset()
	for _, s := range objs {
		if _, err := child.CoreV1().Secrets(s.Namespace).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	o := NewOptions()
	return &Agent{opts: o, child: child, clusterID: testClusterID, parentURL: "https://parent:6443"}, child
}

// answer is what the hub writes into an approved request of agent.
func answer(t *testing.T, agent *Agent, token string, exp time.Time) *clusterv1beta1.ClusterRegistrationRequest {
	t.Helper()
	name := clusterv1beta1.NamePrefix + testClusterID
	pub, err := seal.MarshalPublicKey(agent.key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := seal.Seal(agent.key.PublicKey(), []byte(token), []byte(name))
	if err != nil {
		t.Fatal(err)
	}
	approved := clusterv1beta1.RequestApproved
	e := metav1.NewTime(exp)
	return &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       clusterv1beta1.ClusterRegistrationRequestSpec{ClusterID: testClusterID, PublicKey: pub},
		Status: clusterv1beta1.ClusterRegistrationRequestStatus{
			Result: &approved, SealedToken: sealed, TokenExpirationTimestamp: &e, CACertificate: []byte("ca"),
			DedicatedNamespace: "clusternet-abcde", ManagedClusterName: "edge-1",
		},
	}
}

func TestKeyIsKeptAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	a, child := newTestAgent(t)
	if err := a.ensureKey(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := child.CoreV1().Secrets("clusternet-system").Get(ctx, CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the key was not stored before registering: %v", err)
	}
	again := &Agent{opts: a.opts, child: child}
	if err := again.ensureKey(ctx); err != nil {
		t.Fatal(err)
	}
	if !again.key.Equal(a.key) {
		t.Error("a restarted agent made a new key: its request would be sealed to a key it no longer has")
	}
	if len(stored.Data) != 1 || len(stored.Data[keyPrivateKey]) == 0 {
		t.Errorf("credentials Secret holds %v, want only the key", keysOf(stored.Data))
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestOpenAnswer(t *testing.T) {
	ctx := context.Background()
	a, _ := newTestAgent(t)
	if err := a.ensureKey(ctx); err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2026, 12, 13, 0, 0, 0, 0, time.UTC)
	creds, err := a.openAnswer(answer(t, a, "tok", exp))
	if err != nil {
		t.Fatal(err)
	}
	want := &Credentials{ParentURL: "https://parent:6443", Token: []byte("tok"), TokenExpiration: exp, CACertificate: []byte("ca"),
		ClusterID: testClusterID, DedicatedNamespace: "clusternet-abcde", ManagedClusterName: "edge-1"}
	if diff := cmp.Diff(want, creds); diff != "" {
		t.Errorf("credentials (-want +got):\n%s", diff)
	}

	// Someone else's request for this cluster id (or this cluster before it
	// lost its key): the agent says what happened and what to do.
	other, _ := newTestAgent(t)
	if err := other.ensureKey(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = a.openAnswer(answer(t, other, "tok", exp))
	wantErr := "ClusterRegistrationRequest clusternet-" + testClusterID + " was made with another key than this agent's"
	if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), "kubectl delete clsrr clusternet-"+testClusterID) {
		t.Errorf("error = %v, want one starting %q and saying how to fix it", err, wantErr)
	}
}

func TestRenewToken(t *testing.T) {
	ctx := context.Background()
	a, child := newTestAgent(t)
	if err := a.ensureKey(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.creds = &Credentials{ParentURL: a.parentURL, ClusterID: testClusterID, DedicatedNamespace: "clusternet-abcde", ManagedClusterName: "edge-1"}
	a.trust.set([]byte("ca")) // the bundle of the answer: unchanged, so nothing to check (TestRenewedCABundleReachesRunningClients)
	renewed := answer(t, a, "tok-2", now.Add(48*time.Hour))
	parent := clusternetfake.NewClientset(renewed)
	a.parent = parent

	a.token.set("tok-1", now.Add(time.Hour), now)
	a.renewToken(ctx)
	if got := a.token.get(); got != "tok-1" || len(parent.Actions()) != 0 {
		t.Fatalf("renewed a token with most of its life left: %q after %d requests", got, len(parent.Actions()))
	}
	// Past half its life: fetch, open, use and store the renewed one.
	a.token.obtained = now.Add(-2 * time.Hour)
	a.renewToken(ctx)
	if got := a.token.get(); got != "tok-2" {
		t.Fatalf("token after renewal %q, want tok-2", got)
	}
	stored, err := child.CoreV1().Secrets("clusternet-system").Get(ctx, CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Data[keyToken]) != "tok-2" || len(stored.Data[keyPrivateKey]) == 0 {
		t.Errorf("stored token %q (key kept: %v)", stored.Data[keyToken], len(stored.Data[keyPrivateKey]) > 0)
	}
}

func TestTokenReachesEveryRequest(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	var tok parentToken
	client := &http.Client{Transport: bearerRoundTripper{token: &tok, next: http.DefaultTransport}}
	for _, v := range []string{"a", "b"} {
		tok.set(v, time.Now().Add(time.Hour), time.Time{})
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	if diff := cmp.Diff([]string{"Bearer a", "Bearer b"}, seen); diff != "" {
		t.Errorf("Authorization headers (-want +got):\n%s", diff)
	}
}

func TestForgetBootstrapToken(t *testing.T) {
	ctx := context.Background()
	reg := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "clusternet-agent-cluster-registration", Namespace: "clusternet-system"},
		Data:       map[string][]byte{keyParentURL: []byte("https://parent:6443"), keyRegToken: []byte("abcdef.0123456789abcdef"), keyParentCA: []byte("ca")},
	}
	a, child := newTestAgent(t, reg)
	a.forgetBootstrapToken(ctx)
	got, err := child.CoreV1().Secrets(reg.Namespace).Get(ctx, reg.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]byte{keyParentURL: []byte("https://parent:6443"), keyParentCA: []byte("ca")}, got.Data); diff != "" {
		t.Errorf("registration Secret after registering (-want +got):\n%s", diff)
	}
}
