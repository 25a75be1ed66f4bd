// Package agent is clusternet-agent: it runs in a child cluster, registers it
// with the parent, keeps the parent credentials it is given, and reports the
// child's status at every heartbeat.
package agent

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/features"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/registration"
	"github.com/clusternet/clusternet/pkg/seal"
	"github.com/clusternet/clusternet/pkg/server/command"
	"github.com/clusternet/clusternet/pkg/version"
)

// CredentialsSecret is where the agent keeps what the parent gave it, in
// --agent-namespace of the child, so a restart needs no new registration.
const CredentialsSecret = "clusternet-agent-credentials"

// Keys of the registration Secret (deploy/templates/clusternet_agent_secret.yaml).
const (
	keyParentURL = "parentURL"
	keyRegToken  = "regToken"
	keyParentCA  = "parentCA"
)

// registrationBackoff paces retries of a failed registration: quick at first
// (a hub that is starting), then at most once a minute.
var registrationBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.2, Steps: 7, Cap: time.Minute}

// NewCommand builds the clusternet-agent command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	return command.New(command.Component{
		Use:   "clusternet-agent",
		Short: "Registers this child cluster with a parent and reports its status",
		Long: `clusternet-agent runs in a child cluster. It registers the cluster with a
parent using a bootstrap token, keeps the credentials the parent's hub gives
it, reports the cluster's status at every heartbeat, and holds a tunnel to the
hub through which the parent reaches this cluster's apiserver.

The parent URL and bootstrap token come from --parent-url and
--bootstrap-token, or from the Secret named by --registration-secret
(keys parentURL, regToken, and optionally parentCA).`,
		Flags:    o.Flags(),
		Logs:     o.Logs,
		Validate: o.Validate,
		Run:      o.Run,
	})
}

// Agent is a running agent.
type Agent struct {
	opts      *Options
	childCfg  *rest.Config
	child     kubernetes.Interface
	clusterID types.UID
	parentURL string
	parentCA  []byte
	regToken  string

	// key is the agent's own: the hub seals this cluster's credentials to it.
	key *ecdh.PrivateKey

	// Set once registered.
	creds  *Credentials
	token  parentToken
	trust  parentTrust
	parent versioned.Interface
	// transport is what every parent client sends through (parentTransport):
	// it verifies the parent with trust's bundle as it is at each new
	// connection.
	transport     *trustingTransport
	transportOnce sync.Once

	registrationSecretMissing bool

	// registered, tunnelUp and caches are what readiness reports (health.go).
	registered atomic.Bool
	tunnelUp   atomic.Bool
	caches     caches
	// kick asks for a heartbeat now (the tunnel went up or down, or what
	// the child can take changed: predictor.go).
	kick chan struct{}
	// lastReported is the prediction the last heartbeat wrote.
	lastReported reported
	// statusWriter writes the heartbeats, each from the last one's object.
	statusWriter registration.StatusWriter
}

// Run registers (or reuses stored credentials) and then reports status until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	logger.Info("Starting clusternet-agent", "version", version.Get())
	var current atomic.Pointer[Agent] // what the probes read
	if err := o.serveProbes(ctx, &current); err != nil {
		return err
	}
	a, err := o.newAgent(ctx)
	if err != nil {
		return err
	}
	a.caches.expect(syncModeInformer) // watchSyncMode adds it once registered
	current.Store(a)
	if err := a.register(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // asked to stop while registering: not a failure
		}
		return err
	}
	logger.Info("Registered with the parent", "parent", a.parentURL, "clusterID", a.clusterID,
		"namespace", a.creds.DedicatedNamespace, "managedCluster", a.creds.ManagedClusterName)
	a.registered.Store(true)
	a.forgetBootstrapToken(ctx)
	proxy, err := newChildProxy(a.childCfg, o.ProxyAllowedHosts, a.appPusher())
	if err != nil {
		return fmt.Errorf("building the proxy into the child: %w", err)
	}
	go a.runTunnel(ctx, proxy)
	// Report first: the hub decides whether it pushes here from the
	// AppPusher this heartbeat reports, and must know before pulling starts.
	a.startReporting(ctx, registration.FirstReportWaitsForTunnel, firstReportRetry)
	go a.watchCapacity(ctx)
	if err := a.runPullers(ctx); err != nil {
		return fmt.Errorf("starting pull-mode controllers: %w", err)
	}
	if err := a.runMultiClusterService(ctx); err != nil {
		return err
	}
	ticker := time.NewTicker(o.StatusFrequency)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-a.kick:
		}
		_ = a.heartbeat(ctx) // a failed beat is logged, and retried at the next
		a.renewToken(ctx)
	}
}

// firstReportRetry is how soon a first report that failed is tried again,
// rather than a whole heartbeat period later: until one lands, the hub
// knows nothing of this start.
const firstReportRetry = 5 * time.Second

// startReporting makes the agent's first report and does at once what the
// heartbeat loop would otherwise leave for a whole period. The tunnel is a
// dial away: a report made before it is up is followed at once by another
// saying it is, so the first waits for it, briefly (registration.AwaitTunnel). A restart
// may find the token past half its life (renewal falls due from when it was
// obtained), so the renewal is fetched now.
func (a *Agent) startReporting(ctx context.Context, patience, retry time.Duration) {
	registration.AwaitTunnel(ctx, a.tunnelUp.Load, a.kick, patience)
	if err := a.heartbeat(ctx); err != nil {
		time.AfterFunc(retry, a.askForReport)
	}
	a.renewToken(ctx)
}

// askForReport queues a heartbeat now, unless one is queued already.
func (a *Agent) askForReport() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (o *Options) newAgent(ctx context.Context) (*Agent, error) {
	cfg, err := childConfig(o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("child cluster configuration: %w", err)
	}
	child, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	a := &Agent{opts: o, childCfg: cfg, child: child, parentURL: o.ParentURL, regToken: o.BootstrapToken, kick: make(chan struct{}, 1)}
	if err := a.readRegistrationSecret(ctx); err != nil {
		return nil, err
	}
	if a.parentURL == "" {
		missing := ""
		if a.registrationSecretMissing {
			missing = " (that Secret does not exist in the child)"
		}
		return nil, fmt.Errorf("no parent URL: set --parent-url or %s in Secret %s%s", keyParentURL, o.RegistrationSecret, missing)
	}
	if err := validateParentURL(a.parentURL); err != nil {
		return nil, fmt.Errorf("parent URL: %w", err)
	}
	if o.ParentCAFile != "" {
		if a.parentCA, err = os.ReadFile(o.ParentCAFile); err != nil {
			return nil, fmt.Errorf("--parent-ca-file: %w", err)
		}
	}
	// kube-system lives as long as the cluster: its UID identifies the
	// cluster across agent restarts and re-installs.
	ks, err := child.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the child's kube-system namespace for the cluster id: %w", err)
	}
	a.clusterID = ks.UID
	return a, nil
}

// readRegistrationSecret fills what flags left empty from the Secret upstream
// Clusternet's README creates. A missing Secret is fine when flags say everything.
func (a *Agent) readRegistrationSecret(ctx context.Context) error {
	ns, name, _ := strings.Cut(a.opts.RegistrationSecret, "/")
	secret, err := a.child.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		a.registrationSecretMissing = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading registration Secret %s: %w", a.opts.RegistrationSecret, err)
	}
	if a.parentURL == "" {
		a.parentURL = strings.TrimSpace(string(secret.Data[keyParentURL]))
	}
	if a.regToken == "" {
		a.regToken = strings.TrimSpace(string(secret.Data[keyRegToken]))
		if a.regToken != "" {
			if err := validateToken(a.regToken); err != nil {
				return fmt.Errorf("%s in Secret %s: %w", keyRegToken, a.opts.RegistrationSecret, err)
			}
		}
	}
	if a.opts.ParentCAFile == "" {
		a.parentCA = secret.Data[keyParentCA]
	}
	return nil
}

func childConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}

// parentConfig is a client configuration for the parent with a bearer token.
func (a *Agent) parentConfig(token string, ca []byte) *rest.Config {
	cfg := &rest.Config{
		Host:        a.parentURL,
		BearerToken: token,
		UserAgent:   "clusternet-agent/" + version.Get().GitVersion,
		QPS:         20,
		Burst:       40,
		Timeout:     30 * time.Second,
	}
	cfg.CAData = ca
	return cfg
}

// register makes sure the agent holds working parent credentials: stored
// ones when they are for this parent and still accepted, else new ones from
// a registration with the bootstrap token, retried with backoff.
func (a *Agent) register(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if err := a.ensureKey(ctx); err != nil {
		return err
	}
	if creds, err := a.loadCredentials(ctx); err != nil {
		logger.Error(err, "Ignoring stored credentials")
	} else if creds != nil {
		err := a.useCredentials(ctx, creds)
		if err == nil {
			logger.Info("Reusing stored parent credentials", "managedCluster", creds.ManagedClusterName)
			// Stored again when the stored bundle no longer verifies the
			// parent and the configured parentCA does (sparing the next
			// start the failed handshake, and keeping the credentials
			// working if parentCA is taken out of the registration Secret),
			// or when they were stored before the agent kept when it got
			// the token (renewal then falls due from now on every start).
			if !bytes.Equal(a.creds.CACertificate, creds.CACertificate) || creds.TokenObtained.IsZero() {
				if err := a.storeCredentials(ctx, a.creds); err != nil {
					logger.Error(err, "Storing the parent credentials as in use; the next start reads the stored ones again")
				}
			}
			return nil
		}
		logger.Error(err, "Stored parent credentials no longer work; registering again")
	}
	if a.regToken == "" {
		return fmt.Errorf("no bootstrap token: set --bootstrap-token or %s in Secret %s (the agent removes it once registered: "+
			"if this cluster's stored credentials expired or were revoked, make a new one with 'kubectl clusternet create token' in the parent)",
			keyRegToken, a.opts.RegistrationSecret)
	}
	backoff := registrationBackoff
	for {
		creds, err := a.requestCredentials(ctx)
		if err == nil {
			err = a.useCredentials(ctx, creds)
		}
		if err == nil {
			// What useCredentials settled on: the configured parentCA in
			// place of a bundle from the hub that does not verify the parent.
			if err := a.storeCredentials(ctx, a.creds); err != nil {
				return fmt.Errorf("storing parent credentials in the child: %w", err)
			}
			return nil
		}
		delay := backoff.Step()
		logger.Error(err, "Registration failed, will retry", "parent", a.parentURL, "retryIn", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// requestCredentials creates this cluster's ClusterRegistrationRequest (or
// finds it) and waits for the hub's answer.
func (a *Agent) requestCredentials(ctx context.Context) (*Credentials, error) {
	cs, err := versioned.NewForConfig(a.parentConfig(a.regToken, a.parentCA))
	if err != nil {
		return nil, err
	}
	crrs := cs.ClustersV1beta1().ClusterRegistrationRequests()
	name := clusterv1beta1.NamePrefix + string(a.clusterID)
	publicKey, err := seal.MarshalPublicKey(a.key.PublicKey())
	if err != nil {
		return nil, err
	}
	crr := &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				clusterv1beta1.LabelClusterID:    string(a.clusterID),
				clusterv1beta1.LabelRegisteredBy: "clusternet-agent",
			},
		},
		Spec: clusterv1beta1.ClusterRegistrationRequestSpec{
			ClusterID:        a.clusterID,
			ClusterType:      clusterv1beta1.ClusterType(a.opts.ClusterType),
			ClusterName:      a.opts.ClusterName,
			ClusterNamespace: a.opts.ClusterNamespace,
			SyncMode:         clusterv1beta1.ClusterSyncMode(a.opts.ClusterSyncMode),
			ClusterLabels:    a.opts.ClusterLabels,
			PublicKey:        publicKey,
		},
	}
	if crr.Spec.ClusterName == "" {
		// The name only matters the first time: an existing request keeps its own.
		crr.Spec.ClusterName = a.opts.ClusterNamePrefix + "-" + utilrand.String(5)
	}
	crr.Labels[clusterv1beta1.LabelClusterName] = crr.Spec.ClusterName
	_, err = crrs.Create(ctx, crr, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, explainParentError(err, "creating ClusterRegistrationRequest "+name)
	}
	existed := apierrors.IsAlreadyExists(err)
	// The bootstrap token may only create and get requests, not watch them:
	// AwaitAnswer polls (registration.AnswerPoll says why).
	var pendingOnce sync.Once
	got, err := registration.AwaitAnswer(ctx, crrs, name, func(got *clusterv1beta1.ClusterRegistrationRequest) {
		if r := got.Status.Result; r != nil && *r == clusterv1beta1.RequestPending && got.Status.ErrorMessage != "" {
			pendingOnce.Do(func() {
				klog.FromContext(ctx).Info("Registration pending", "request", name, "hub", got.Status.ErrorMessage)
			})
		}
	})
	if err != nil {
		return nil, explainParentError(err, "ClusterRegistrationRequest "+name)
	}
	if existed {
		warnIfChanged(ctx, got.Spec, crr.Spec, a.opts)
	}
	return a.openAnswer(got)
}

// warnIfChanged says which flags an earlier registration of this cluster
// overrides: a cluster registers once, and its sync mode in particular is not
// meant to change afterwards (upstream Clusternet's README recommends Dual with AppPusher).
func warnIfChanged(ctx context.Context, registered, asked clusterv1beta1.ClusterRegistrationRequestSpec, o *Options) {
	logger := klog.FromContext(ctx)
	if asked.SyncMode != registered.SyncMode {
		logger.Info("Warning: --cluster-sync-mode differs from this cluster's registration, which is kept", "asked", asked.SyncMode, "registered", registered.SyncMode)
	}
	if o.ClusterName != "" && asked.ClusterName != registered.ClusterName {
		logger.Info("Warning: --cluster-name differs from this cluster's registration, which is kept", "asked", asked.ClusterName, "registered", registered.ClusterName)
	}
	if len(asked.ClusterLabels) > 0 && fmt.Sprint(asked.ClusterLabels) != fmt.Sprint(registered.ClusterLabels) {
		logger.Info("Warning: --cluster-labels differ from this cluster's registration; label the ManagedCluster in the parent to change them", "asked", asked.ClusterLabels, "registered", registered.ClusterLabels)
	}
}

// explainParentError turns the parent's refusals into what to do about them.
func explainParentError(err error, doing string) error {
	var unknownAuthority x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknownAuthority):
		return fmt.Errorf("%s: the parent's certificate is not signed by a CA the agent trusts: set --parent-ca-file, or parentCA in the registration Secret: %w", doing, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the parent rejected the bootstrap token (401 Unauthorized): check --bootstrap-token or regToken in the registration Secret, and that the token exists in the parent's kube-system: %w", doing, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: the bootstrap token may not do this (403 Forbidden): apply deploy/hub's RBAC in the parent: %w", doing, err)
	default:
		return fmt.Errorf("%s: %w", doing, err)
	}
}

// useCredentials builds the parent client from creds and checks it by
// reading this cluster's ManagedCluster. a.creds is what it settled on:
// creds, or creds with the configured parentCA when only that verifies the
// parent.
func (a *Agent) useCredentials(ctx context.Context, creds *Credentials) error {
	settled := *creds
	if settled.TokenObtained.IsZero() {
		settled.TokenObtained = time.Now()
	}
	mc, err := a.readOwnCluster(ctx, &settled)
	if unverified(err) && len(a.parentCA) > 0 && !bytes.Equal(a.parentCA, settled.CACertificate) {
		// The bundle from the hub does not verify the parent at this
		// agent's URL (a load balancer with its own CA), or the parent's CA
		// rotated while this agent was away: the CA this child's admin
		// configured may. Without this, stored credentials would be given
		// up for a registration whose bootstrap token is long gone.
		configured := settled
		configured.CACertificate = a.parentCA
		mcc, cerr := a.readOwnCluster(ctx, &configured)
		if cerr != nil && !unverified(cerr) {
			// It verified the parent: what failed is something else.
			return fmt.Errorf("reading ManagedCluster %s/%s with the configured parentCA: %w", settled.DedicatedNamespace, settled.ManagedClusterName, cerr)
		}
		if cerr == nil {
			settled, mc, err = configured, mcc, nil
		}
	}
	if unverified(err) {
		return fmt.Errorf("reading ManagedCluster %s/%s: the parent's certificate does not verify with the CA bundle of these credentials, "+
			"nor with parentCA of the registration Secret or --parent-ca-file: set either to the CA of the parent at %s: %w",
			settled.DedicatedNamespace, settled.ManagedClusterName, a.parentURL, err)
	}
	if err != nil {
		return fmt.Errorf("reading ManagedCluster %s/%s with the stored token: %w", settled.DedicatedNamespace, settled.ManagedClusterName, err)
	}
	a.statusWriter.Seen(mc)
	a.creds = &settled
	a.token.set(string(settled.Token), settled.TokenExpiration, settled.TokenObtained)
	a.trust.set(settled.CACertificate)
	// From here on every parent client reads the token per request and the
	// bundle per connection, so renewed ones replace them everywhere at once.
	if a.parent, err = versioned.NewForConfig(a.credentialsConfig()); err != nil {
		return err
	}
	return nil
}

// appPusher is the AppPusher gate: whether the hub may push applications here.
func (a *Agent) appPusher() bool { return a.opts.FeatureGates.Enabled(features.AppPusher) }

func (a *Agent) logError(ctx context.Context, err error) {
	klog.FromContext(ctx).Error(err, "Agent controller failed")
}
