package main

import (
	"context"
	"crypto/ecdh"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/clusternet/clusternet/pkg/registration"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/deployer"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/scheme"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/seal"
	"github.com/clusternet/clusternet/pkg/tunnel"
	"github.com/clusternet/clusternet/pkg/tunnel/wire"
	"github.com/clusternet/clusternet/test/memchild"
)

// heartbeatEvery is the agent's default --cluster-status-update-frequency.
const heartbeatEvery = 3 * time.Minute

// parent is what every stand-in knows of the parent: what an agent is
// given (URL, CA, bootstrap token).
type parent struct {
	url, bootstrapToken string
	ca                  []byte
}

// standIn is one cluster's agent, in this process: it registers as
// clusternet-agent does (pkg/server/agent: a ClusterRegistrationRequest
// with the bootstrap token, the hub's answer sealed to its own key), then
// reports heartbeats and holds a tunnel with its own credentials, and in
// Pull runs pkg/deployer's controller against its in-memory child.
type standIn struct {
	parent   parent
	id       types.UID
	key      *ecdh.PrivateKey
	child    *memchild.Child
	childCfg *rest.Config

	// Set once registered.
	ns, mcName string
	token      string
	ca         []byte
	client     versioned.Interface
	kube       kubernetes.Interface
	status     registration.StatusWriter
	// registered is how long the registration took, from the start to
	// the first heartbeat written (ManagedCluster Ready, with the tunnel
	// up unless it took more than the agent waits for it).
	registered time.Duration

	// push is the AppPusher the heartbeats report: on, the hub pushes.
	push     atomic.Bool
	tunnelUp atomic.Bool
	kick     chan struct{}
	pulling  context.CancelFunc
	pullDone chan struct{}
}

func newStandIn(p parent, child *memchild.Child, childCfg *rest.Config) (*standIn, error) {
	key, err := seal.GenerateKey()
	if err != nil {
		return nil, err
	}
	return &standIn{parent: p, id: types.UID(uuid.NewString()), key: key, child: child, childCfg: childCfg, kick: make(chan struct{}, 1)}, nil
}

// config is a parent client configuration with token on its own
// connection, as each agent holds one: client-go would otherwise share one
// HTTP/2 connection between every stand-in with the same CA.
func (s *standIn) config(token string, ca []byte) *rest.Config {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &rest.Config{Host: s.parent.url, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		UserAgent: "clusternet-scale-standin", QPS: 20, Burst: 40, Dial: d.DialContext}
}

// run registers, opens the tunnel, writes the first heartbeat, and then
// keeps the tunnel up and the heartbeats going until ctx ends; ready is
// called once registered.
func (s *standIn) run(ctx context.Context, ready func(error)) {
	start := time.Now()
	if err := s.register(ctx); err != nil {
		ready(fmt.Errorf("cluster %s: %w", s.id, err))
		return
	}
	go s.runTunnel(ctx)
	registration.AwaitTunnel(ctx, s.tunnelUp.Load, s.kick, registration.FirstReportWaitsForTunnel)
	if err := s.heartbeat(ctx); err != nil {
		ready(fmt.Errorf("cluster %s: first heartbeat: %w", s.id, err))
		return
	}
	s.registered = time.Since(start)
	ready(nil)
	ticker := time.NewTicker(heartbeatEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-s.kick:
		}
		_ = s.heartbeat(ctx) // a missed beat is retried at the next, as the agent does
	}
}

// registrationBackoff paces retries of a registration that was not
// answered, as the agent's (pkg/server/agent/agent.go) does.
var registrationBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.2, Steps: 7, Cap: time.Minute}

// register asks for credentials until it has them or ctx ends, as the
// agent does.
func (s *standIn) register(ctx context.Context) error {
	backoff := registrationBackoff
	for {
		err := s.request(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff.Step()):
		}
	}
}

// request creates this cluster's request with the bootstrap token and
// polls for the hub's answer as the agent does (the token may not watch),
// quickly at first, for at most a minute.
func (s *standIn) request(ctx context.Context) error {
	boot, err := versioned.NewForConfig(s.config(s.parent.bootstrapToken, s.parent.ca))
	if err != nil {
		return err
	}
	publicKey, err := seal.MarshalPublicKey(s.key.PublicKey())
	if err != nil {
		return err
	}
	name := clusterv1beta1.NamePrefix + string(s.id)
	clusterName := "scale-" + string(s.id)[:8]
	crr := &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			clusterv1beta1.LabelClusterID: string(s.id), clusterv1beta1.LabelRegisteredBy: "clusternet-agent",
			clusterv1beta1.LabelClusterName: clusterName}},
		Spec: clusterv1beta1.ClusterRegistrationRequestSpec{ClusterID: s.id, ClusterType: "EdgeCluster", ClusterName: clusterName,
			SyncMode: clusterv1beta1.DualSyncMode, PublicKey: publicKey, ClusterLabels: map[string]string{"scale": "stand-in"}},
	}
	crrs := boot.ClustersV1beta1().ClusterRegistrationRequests()
	if _, err := crrs.Create(ctx, crr, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ClusterRegistrationRequest: %w", err)
	}
	// The agent's own wait (pkg/server/agent), so the benchmark measures it.
	got, err := registration.AwaitAnswer(ctx, crrs, name, nil)
	if err != nil {
		return fmt.Errorf("ClusterRegistrationRequest %s: %w", name, err)
	}
	return s.useAnswer(ctx, got)
}

// useAnswer opens the token the hub sealed to this stand-in's key and
// checks it as the agent does, by reading its ManagedCluster.
func (s *standIn) useAnswer(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest) error {
	token, err := seal.Open(s.key, crr.Status.SealedToken, []byte(crr.Name))
	if err != nil {
		return fmt.Errorf("status.sealedToken: %w", err)
	}
	s.token, s.ns, s.mcName = string(token), crr.Status.DedicatedNamespace, crr.Status.ManagedClusterName
	s.ca = crr.Status.CACertificate
	if len(s.ca) == 0 {
		s.ca = s.parent.ca
	}
	cfg := s.config(s.token, s.ca)
	if s.client, err = versioned.NewForConfig(cfg); err != nil {
		return err
	}
	if s.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	mc, err := s.client.ClustersV1beta1().ManagedClusters(s.ns).Get(ctx, s.mcName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	s.status.Seen(mc)
	return nil
}

// heartbeat writes the ManagedCluster's status as the agent's writeStatus
// does (registration.StatusWriter): a child whose apiserver is healthy,
// with the stand-in's AppPusher and tunnel.
func (s *standIn) heartbeat(ctx context.Context) error {
	freq := int64(heartbeatEvery / time.Second)
	status := clusterv1beta1.ManagedClusterStatus{LastObservedTime: metav1.Now(), APIServerURL: s.childCfg.Host,
		AppPusher: s.push.Load(), UseSocket: s.tunnelUp.Load(), AgentVersion: "scale-standin", HeartbeatFrequencySeconds: &freq,
		K8sVersion: "v1.33.0", Platform: "linux/amd64", Healthz: true, Livez: true, Readyz: true}
	return s.status.Write(ctx, s.client.ClustersV1beta1(), s.ns, s.mcName, status, func(generation int64) metav1.Condition {
		return metav1.Condition{Type: clusterv1beta1.ClusterReady, Status: metav1.ConditionTrue,
			Reason: "ClusterReady", Message: "the child apiserver's /readyz is ok", ObservedGeneration: generation}
	})
}

// beatNow asks for a heartbeat at once.
func (s *standIn) beatNow() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *standIn) socketURL() string {
	return "wss://" + strings.TrimPrefix(s.parent.url, "https://") + proxiesv1alpha1.TunnelPath(string(s.id))
}

// runTunnel keeps the tunnel to the hub up until ctx ends, redialling a
// second after it drops.
func (s *standIn) runTunnel(ctx context.Context) {
	for ctx.Err() == nil {
		_ = s.serveTunnel(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// serveTunnel opens the websocket through the parent with this cluster's
// token, as pkg/server/agent/tunnel.go does, and serves the hub's streams
// with the in-memory child until the tunnel closes.
func (s *standIn) serveTunnel(ctx context.Context) error {
	tlsConfig, err := rest.TLSConfigFor(s.config(s.token, s.ca))
	if err != nil {
		return err
	}
	dialer := websocket.Dialer{TLSClientConfig: tlsConfig, HandshakeTimeout: 30 * time.Second, WriteBufferPool: tunnel.WriteBufferPool}
	ws, resp, err := dialer.DialContext(ctx, s.socketURL(), http.Header{"Authorization": {"Bearer " + s.token}})
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			_ = resp.Body.Close()
			return fmt.Errorf("opening the tunnel: %s: %s", resp.Status, body)
		}
		return err
	}
	session, err := tunnel.Client(tunnel.NewConn(ws))
	if err != nil {
		_ = ws.Close()
		return err
	}
	s.tunnelUp.Store(true)
	s.beatNow()
	defer func() { s.tunnelUp.Store(false); s.beatNow() }()
	stop := context.AfterFunc(ctx, func() { _ = session.Close() })
	defer stop()
	srv := &http.Server{Handler: http.HandlerFunc(s.serveChild), ReadHeaderTimeout: 30 * time.Second}
	err = srv.Serve(session)
	_ = session.Close()
	return err
}

// serveChild answers a request the hub sent through the tunnel from the
// in-memory child. The caller's identity is dropped: the child does not
// model impersonation (the real agent's checks are pkg/server/agent/proxy.go's).
func (s *standIn) serveChild(w http.ResponseWriter, r *http.Request) {
	_ = wire.TakeIdentity(r.Header)
	r.Header.Del("Authorization")
	target, err := wire.ParseTarget(r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if target.Scheme != "direct" {
		http.Error(w, "a stand-in's child has no other hosts", http.StatusForbidden)
		return
	}
	r.URL.Path, r.URL.RawPath = target.Path, ""
	s.child.ServeHTTP(w, r)
}

// startPulling runs pkg/deployer's controller for this cluster's
// Descriptions against its in-memory child, as the agent's generic puller
// (pkg/server/agent/pull_generic.go) does when the hub does not push; its
// events go to the cluster's dedicated namespace with its own credentials.
func (s *standIn) startPulling(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.kube.CoreV1().Events(s.ns)})
	informers := externalversions.NewSharedInformerFactoryWithOptions(s.client, 0, externalversions.WithNamespace(s.ns))
	ctl, err := deployer.NewController(deployer.Options{
		Name:         "generic-puller",
		Parent:       s.client,
		Descriptions: informers.Apps().V1alpha1().Descriptions(),
		Events:       broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "clusternet-agent"}),
		Place:        deployer.OwnNamespace(s.ns, string(s.id), func() *rest.Config { return rest.CopyConfig(s.childCfg) }),
		Workers:      2,
	})
	if err != nil {
		cancel()
		broadcaster.Shutdown()
		return err
	}
	informers.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer broadcaster.Shutdown()
		defer informers.Shutdown()
		ctl.Run(ctx)
	}()
	s.pulling, s.pullDone = cancel, done
	return nil
}

// stopPulling stops the pull controller and waits for it.
func (s *standIn) stopPulling() {
	if s.pulling == nil {
		return
	}
	s.pulling()
	<-s.pullDone
	s.pulling, s.pullDone = nil, nil
}
