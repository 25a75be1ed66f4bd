package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/seal"
)

// pendingParent plays the parent's API for one registration: it takes the
// request, and answers it once answerAfter has passed since, counting the
// agent's reads meanwhile.
type pendingParent struct {
	t           *testing.T
	answer      *clusterv1beta1.ClusterRegistrationRequest
	answerAfter time.Duration

	mu      sync.Mutex
	created time.Time
	reads   int
}

func (p *pendingParent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	const path = "/apis/clusters.clusternet.io/v1beta1/clusterregistrationrequests"
	reply := p.answer.DeepCopy()
	reply.APIVersion, reply.Kind = clusterv1beta1.SchemeGroupVersion.String(), "ClusterRegistrationRequest"
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == path:
		p.created = time.Now()
		reply.Status = clusterv1beta1.ClusterRegistrationRequestStatus{}
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodGet && r.URL.Path == path+"/"+p.answer.Name:
		p.reads++
		if time.Since(p.created) < p.answerAfter {
			reply.Status = clusterv1beta1.ClusterRegistrationRequestStatus{}
		}
	default:
		p.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if err := json.NewEncoder(w).Encode(reply); err != nil {
		p.t.Error(err)
	}
}

// A waiting agent reads its request a few times while the hub is busy, not
// several times a second: a thousand of them share the bootstrap token's
// small priority level with the requests that register.
func TestRequestCredentialsPollsGently(t *testing.T) {
	agent, _ := newTestAgent(t)
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	agent.key, agent.regToken = key, "abcdef.0123456789abcdef"
	parent := &pendingParent{t: t, answer: answer(t, agent, "tok", time.Now().Add(time.Hour)), answerAfter: 1200 * time.Millisecond}
	server := httptest.NewServer(parent)
	defer server.Close()
	agent.parentURL = server.URL

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	creds, err := agent.requestCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(creds.Token) != "tok" {
		t.Errorf("token %q, want tok", creds.Token)
	}
	parent.mu.Lock()
	defer parent.mu.Unlock()
	// Backing off from 100ms by half each time (and a quarter of jitter),
	// the answer after 1.2s is read on the 6th or 7th read; the 200ms cap
	// read it 12 times.
	if parent.reads > 7 {
		t.Errorf("%d reads of the request for an answer that took %s, want at most 7", parent.reads, parent.answerAfter)
	}
	// ... and soon after it was there: within the 2.5s longest wait.
	if took := time.Since(start); took > parent.answerAfter+2500*time.Millisecond {
		t.Errorf("the answer was read after %s, want within 2.5s of its %s", took, parent.answerAfter)
	}
}
