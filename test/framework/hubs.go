package framework

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/clusternet/clusternet/test/testbed"
)

// Hubs are several clusternet-hub replicas sharing one APIService: the
// parent's aggregator reaches them through a round-robin TCP balancer on
// loopback (what a Service does in a real install), and they serve the
// certificate they manage themselves (--self-signed-certs): the
// APIServices and the webhook are installed without a caBundle, and the
// hubs fill it in.
type Hubs struct {
	Replicas []*Hub
	Balancer *Balancer
}

// StartHubs starts n hubs behind a Balancer, each on its own loopback port
// (which is also its --peer-advertise-address), registers the Balancer as
// the Service behind proxies.clusternet.io, shadow and the Subscription
// webhook, and returns once real requests through the parent reach them.
func StartHubs(ctx context.Context, dir string, start Starter, parent *testbed.Cluster, binary string, n int, extraArgs ...string) (*Hubs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	balancer, err := NewBalancer()
	if err != nil {
		return nil, err
	}
	hs := &Hubs{Balancer: balancer}
	// Registered before the hubs start, without a caBundle: the first hub
	// sets it.
	if err := kubectl(ctx, parent, apiServiceManifest(balancer.Port(), nil), "apply", "-f", "-"); err != nil {
		balancer.Close()
		return nil, err
	}
	var backends []string
	for i := range n {
		port, release, err := testbed.ReservePort()
		if err != nil {
			hs.Stop()
			return nil, err
		}
		args, err := HubArgs(parent, port, extraArgs...)
		if err != nil {
			release()
			hs.Stop()
			return nil, err
		}
		h := &Hub{Port: port, binary: binary, start: withName(start, fmt.Sprintf("clusternet-hub-%d", i)), args: args}
		err = h.run()
		release()
		if err != nil {
			hs.Stop()
			return nil, err
		}
		hs.Replicas = append(hs.Replicas, h)
		backends = append(backends, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	balancer.SetBackends(backends...)
	// Every replica must answer: ask through the parent until as many
	// requests in a row as there are replicas succeed (the balancer takes
	// turns, and the aggregator opens new connections as it needs them).
	for _, path := range []string{"/apis/proxies.clusternet.io/v1alpha1", "/apis/shadow/v1alpha1/namespaces"} {
		ok := 0
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
			for _, h := range hs.Replicas {
				if h.Exited() {
					return false, fmt.Errorf("%s exited:\n%s", h.Name, h.LogTail(3000))
				}
			}
			if kubectl(ctx, parent, "", "get", "--raw", path) != nil {
				ok = 0
				return false, nil
			}
			ok++
			return ok >= 2*n, nil
		})
		if err != nil {
			hs.Stop()
			return nil, fmt.Errorf("%s not served through the parent by %d hubs with the certificate they manage: %w\n%s", path, n, err, hs.LogTail(2000))
		}
	}
	if err := registerWebhook(ctx, parent, hs.Replicas[0], nil, balancer.Port()); err != nil {
		hs.Stop()
		return nil, err
	}
	return hs, nil
}

func withName(start Starter, name string) Starter {
	return func(_, binary string, args ...string) (*testbed.Process, error) { return start(name, binary, args...) }
}

// apiServiceManifest is the ExternalName Service to localhost:port and the
// two APIServices, with caBundle when it is set.
func apiServiceManifest(port int, caBundle []byte) string {
	ca := ""
	if caBundle != nil {
		ca = "\n  caBundle: " + base64.StdEncoding.EncodeToString(caBundle)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: clusternet-hub, namespace: clusternet-system}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{port: %[1]d, protocol: TCP}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1alpha1.proxies.clusternet.io}
spec:
  group: proxies.clusternet.io
  version: v1alpha1
  groupPriorityMinimum: 1000
  versionPriority: 100%[2]s
  service: {name: clusternet-hub, namespace: clusternet-system, port: %[1]d}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1alpha1.shadow}
spec:
  group: shadow
  version: v1alpha1
  groupPriorityMinimum: 100
  versionPriority: 100%[2]s
  service: {name: clusternet-hub, namespace: clusternet-system, port: %[1]d}
`, port, ca)
}

// Stop stops every replica that still runs, and the balancer.
func (hs *Hubs) Stop() {
	for _, h := range hs.Replicas {
		if h.Process != nil && !h.Exited() {
			_ = h.Stop(10 * time.Second)
		}
	}
	hs.Balancer.Close()
}

// LogTail is the end of every replica's log.
func (hs *Hubs) LogTail(n int64) string {
	out := ""
	for _, h := range hs.Replicas {
		if h.Process != nil {
			out += fmt.Sprintf("--- %s (pid %d, %s) ---\n%s\n", h.Name, h.Pid, h.Log, h.LogTail(n))
		}
	}
	return out
}

// Balancer forwards each TCP connection it accepts on 127.0.0.1 to the
// next backend in turn, skipping backends that refuse the connection.
type Balancer struct {
	ln net.Listener

	mu       sync.Mutex
	backends []string
	next     int
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// NewBalancer listens on a free loopback port; it forwards nowhere until
// SetBackends.
func NewBalancer() (*Balancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Balancer{ln: ln, conns: map[net.Conn]struct{}{}}
	b.wg.Go(b.serve)
	return b, nil
}

// Port is where the balancer listens.
func (b *Balancer) Port() int { return b.ln.Addr().(*net.TCPAddr).Port }

// SetBackends replaces the backends (host:port); connections already made stay.
func (b *Balancer) SetBackends(addrs ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = append([]string(nil), addrs...)
}

// Close stops listening and closes every connection.
func (b *Balancer) Close() {
	_ = b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *Balancer) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Go(func() { b.forward(c) })
	}
}

func (b *Balancer) track(c net.Conn, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on {
		b.conns[c] = struct{}{}
	} else {
		delete(b.conns, c)
	}
}

func (b *Balancer) dial() (net.Conn, error) {
	b.mu.Lock()
	backends, start := b.backends, b.next
	b.next++
	b.mu.Unlock()
	last := errors.New("no backends")
	for i := range backends {
		c, err := net.DialTimeout("tcp", backends[(start+i)%len(backends)], time.Second)
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

func (b *Balancer) forward(client net.Conn) {
	b.track(client, true)
	defer b.track(client, false)
	defer client.Close()
	backend, err := b.dial()
	if err != nil {
		return
	}
	b.track(backend, true)
	defer b.track(backend, false)
	defer backend.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Either side ending ends both: a killed backend must drop its
		// clients at once, as a dead pod's connections are reset.
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(backend, client)
	go pipe(client, backend)
	<-done
	<-done
}
