package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ClusterOptions describe one control plane.
type ClusterOptions struct {
	// Name names the cluster, its folder and its kubeconfig context.
	Name string
	// Dir is the folder the cluster's files go in (Dir/Name).
	Dir string
	// Nodes is how many kwok fake nodes to create (default 1).
	Nodes int
	// ExtraAPIServerArgs are appended to kube-apiserver's flags.
	ExtraAPIServerArgs []string
	// KubeVersion is the Kubernetes version of the control plane: KubeVersion()
	// when empty, or ChildSkewVersion() for a child of another version.
	KubeVersion string
}

// Cluster is a running control plane: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok, all on 127.0.0.1.
type Cluster struct {
	Name string `json:"name"`
	Dir  string `json:"dir"`
	// KubeVersion is the Kubernetes version its control plane runs: what
	// its apiserver's /version says and its agent reports.
	KubeVersion string `json:"kubeVersion"`
	// URL is the apiserver's address, https://127.0.0.1:<port>.
	URL string `json:"url"`
	// Kubeconfig is an admin (system:masters) kubeconfig with embedded certificates.
	Kubeconfig string `json:"kubeconfig"`
	// CAFile verifies the apiserver and signs its clients' certificates.
	CAFile    string `json:"caFile"`
	CAKeyFile string `json:"caKeyFile"`
	// FrontProxyCAFile is the requestheader CA an aggregated API server trusts.
	FrontProxyCAFile string `json:"frontProxyCAFile"`
	// KubeletPort is where kwok serves the kubelet API of the fake nodes.
	KubeletPort int `json:"kubeletPort"`
	// PodLogFile is every fake container's log (CRI format): `kubectl logs`
	// reads it, and `logs -f` follows what AppendPodLog adds.
	PodLogFile string `json:"podLogFile"`
	// PortForwardTarget is what `kubectl port-forward` to any fake pod
	// reaches: this cluster's etcd, whose /health answers over plain HTTP.
	PortForwardTarget string     `json:"portForwardTarget"`
	Processes         []*Process `json:"processes"`

	bins  *Binaries
	ports []*portLock
}

const (
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	stopGrace          = 10 * time.Second
)

// StartCluster starts a control plane and returns once its apiserver is
// ready, its fake nodes are Ready and pods can be created in "default".
func StartCluster(ctx context.Context, bins *Binaries, opts ClusterOptions) (_ *Cluster, err error) {
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	kube, err := bins.controlPlane(opts.KubeVersion)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", opts.Name, err)
	}
	dir, err := filepath.Abs(filepath.Join(opts.Dir, opts.Name))
	if err != nil {
		return nil, err
	}
	// A stopped testbed keeps its folders for post-mortems; a new one must not
	// inherit their etcd data (objects signed by CAs that no longer exist).
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{Name: opts.Name, Dir: dir, KubeVersion: kube.Version, bins: bins}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	ports := make([]int, 4)
	for i := range ports {
		pl, err := reservePort()
		if err != nil {
			return nil, err
		}
		c.ports = append(c.ports, pl)
		ports[i] = pl.Port
	}
	etcdPort, peerPort, apiPort, kubeletPort := ports[0], ports[1], ports[2], ports[3]
	c.URL = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort))
	c.KubeletPort = kubeletPort

	pki, err := c.writePKI()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: certificates: %w", c.Name, err)
	}

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	if err := c.start("etcd", bins.Etcd,
		"--name=default", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		// A testbed is thrown away after the run: durability buys nothing here.
		"--unsafe-no-fsync", "--quota-backend-bytes=4294967296", "--log-level=warn",
	); err != nil {
		return nil, err
	}
	if err := c.waitHTTP(ctx, "etcd", etcdURL+"/health", nil); err != nil {
		return nil, err
	}

	apiArgs := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + pki["apiserver.crt"], "--tls-private-key-file=" + pki["apiserver.key"],
		"--client-ca-file=" + c.CAFile,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + pki["sa.pub"], "--service-account-signing-key-file=" + pki["sa.key"],
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC",
		"--enable-bootstrap-token-auth",
		"--allow-privileged",
		// The kubernetes Service cannot point at a loopback address: keep its
		// endpoints unmanaged rather than log a rejected update every 10 s.
		"--endpoint-reconciler-type=none",
		// What an aggregated API server (the hub) needs to trust the parent.
		"--requestheader-client-ca-file=" + c.FrontProxyCAFile,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-uid-headers=X-Remote-Uid",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + pki["front-proxy-client.crt"], "--proxy-client-key-file=" + pki["front-proxy-client.key"],
		// kwok serves the fake nodes' kubelet API on 127.0.0.1 with a cert from our CA.
		"--kubelet-client-certificate=" + pki["apiserver-kubelet-client.crt"],
		"--kubelet-client-key=" + pki["apiserver-kubelet-client.key"],
		"--kubelet-certificate-authority=" + c.CAFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--profiling=false",
	}
	apiArgs = append(apiArgs, opts.ExtraAPIServerArgs...)
	if err := c.start("kube-apiserver", kube.KubeAPIServer, apiArgs...); err != nil {
		return nil, err
	}
	admin, err := tlsClientConfig(c.CAFile, pki["admin.crt"], pki["admin.key"])
	if err != nil {
		return nil, err
	}
	if err := c.waitHTTP(ctx, "kube-apiserver", c.URL+"/readyz", admin); err != nil {
		return nil, err
	}

	c.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	kubeconfigs := map[string]string{"admin": c.Kubeconfig}
	for _, user := range []string{"controller-manager", "scheduler", "kwok"} {
		kubeconfigs[user] = filepath.Join(dir, user+".kubeconfig")
	}
	for user, path := range kubeconfigs {
		if err := c.writeKubeconfig(path, pki[user+".crt"], pki[user+".key"]); err != nil {
			return nil, err
		}
	}

	if err := c.start("kube-controller-manager", kube.ControllerManager,
		"--kubeconfig="+kubeconfigs["controller-manager"],
		"--secure-port=0", "--leader-elect=false",
		"--cluster-name="+c.Name,
		"--service-account-private-key-file="+pki["sa.key"],
		"--root-ca-file="+c.CAFile,
		"--use-service-account-credentials",
		"--cluster-signing-cert-file="+c.CAFile, "--cluster-signing-key-file="+c.CAKeyFile,
		// bootstrapsigner and tokencleaner are off by default; registration
		// with bootstrap tokens needs them as a real cluster has them.
		"--controllers=*,bootstrapsigner,tokencleaner",
	); err != nil {
		return nil, err
	}
	if err := c.start("kube-scheduler", kube.Scheduler,
		"--kubeconfig="+kubeconfigs["scheduler"], "--secure-port=0", "--leader-elect=false",
	); err != nil {
		return nil, err
	}
	kwokArgs := []string{
		"--kubeconfig=" + kubeconfigs["kwok"],
		"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
		"--node-ip=127.0.0.1", "--node-port=" + strconv.Itoa(kubeletPort),
		"--server-address=127.0.0.1:" + strconv.Itoa(kubeletPort),
		"--tls-cert-file=" + pki["kwok-serving.crt"], "--tls-private-key-file=" + pki["kwok-serving.key"],
		"--node-lease-duration-seconds=40",
	}
	for _, stage := range kwokStages {
		kwokArgs = append(kwokArgs, "--config="+filepath.Join(bins.KwokStages, stage))
	}
	ioConfig, err := c.writeContainerIO(etcdPort)
	if err != nil {
		return nil, err
	}
	kwokArgs = append(kwokArgs, "--config="+ioConfig)
	if err := c.start("kwok", bins.Kwok, kwokArgs...); err != nil {
		return nil, err
	}

	cs, err := c.Clientset()
	if err != nil {
		return nil, err
	}
	for i := range opts.Nodes {
		if err := createFakeNode(ctx, cs, fmt.Sprintf("%s-node-%d", c.Name, i)); err != nil {
			return nil, fmt.Errorf("cluster %s: creating fake node: %w", c.Name, err)
		}
	}
	if err := c.waitReady(ctx, cs, opts.Nodes); err != nil {
		return nil, err
	}
	return c, nil
}

// kwokStages are the stage files (in kwok's module) that make nodes Ready,
// keep their leases fresh, and move pods to Running and through deletion.
var kwokStages = []string{
	"node/fast/node-initialize.yaml",
	"node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"pod/fast/pod-ready.yaml",
	"pod/fast/pod-complete.yaml",
	"pod/fast/pod-delete.yaml",
}

// writeContainerIO configures what kwok's fake containers do for logs,
// attach, exec and port-forward, so those verbs work for real end to end.
func (c *Cluster) writeContainerIO(etcdPort int) (string, error) {
	c.PodLogFile = filepath.Join(c.Dir, "pods.log")
	c.PortForwardTarget = "127.0.0.1:" + strconv.Itoa(etcdPort)
	if err := c.AppendPodLog("testbed container started"); err != nil {
		return "", err
	}
	workDir := filepath.Join(c.Dir, "exec")
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return "", err
	}
	config := fmt.Sprintf(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata: {name: testbed-logs}
spec:
  logs:
  - logsFile: %[1]s
    follow: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterAttach
metadata: {name: testbed-attach}
spec:
  attaches:
  - logsFile: %[1]s
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata: {name: testbed-exec}
spec:
  execs:
  - local:
      workDir: %[2]s
      envs:
      - {name: TESTBED_CLUSTER, value: %[3]s}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata: {name: testbed-port-forward}
spec:
  forwards:
  - target: {address: 127.0.0.1, port: %[4]d}
`, c.PodLogFile, workDir, c.Name, etcdPort)
	path := filepath.Join(c.Dir, "kwok-container-io.yaml")
	return path, os.WriteFile(path, []byte(config), 0o644)
}

// AppendPodLog adds a line to every fake container's log, in the CRI format
// the kubelet API serves (anything else makes `kubectl logs` a BadRequest).
func (c *Cluster) AppendPodLog(line string) error {
	f, err := os.OpenFile(c.PodLogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), line)
	return errors.Join(err, f.Close())
}

func (c *Cluster) start(name, binary string, args ...string) error {
	p, err := startProcess(c.Dir, name, binary, args...)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	c.Processes = append(c.Processes, p)
	return nil
}

// Stop stops every process this cluster started, newest first, and keeps its
// files for post-mortems. It is safe to call more than once.
func (c *Cluster) Stop() {
	for i := len(c.Processes) - 1; i >= 0; i-- {
		_ = c.Processes[i].Stop(stopGrace)
	}
	for _, p := range c.ports {
		p.release()
	}
	c.ports = nil
}

// RestartAPIServer stops kube-apiserver and starts it again with the same
// flags and port, returning once it is ready: what a control-plane upgrade
// or crash looks like to the clusters' clients.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	old := c.Process("kube-apiserver")
	if err := old.Stop(stopGrace); err != nil {
		return err
	}
	p, err := startProcess(c.Dir, old.Name, old.Binary, old.Args...)
	if err != nil {
		return err
	}
	for i := range c.Processes {
		if c.Processes[i] == old {
			c.Processes[i] = p
		}
	}
	admin, err := tlsClientConfig(c.CAFile, filepath.Join(c.Dir, "pki", "admin.crt"), filepath.Join(c.Dir, "pki", "admin.key"))
	if err != nil {
		return err
	}
	return c.waitHTTP(ctx, "kube-apiserver", c.URL+"/readyz", admin)
}

// Process returns the named process (etcd, kube-apiserver, ...) or nil.
func (c *Cluster) Process(name string) *Process {
	for _, p := range c.Processes {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// RESTConfig is an admin client configuration for the cluster.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	return cfg, nil
}

// Clientset is an admin clientset for the cluster.
func (c *Cluster) Clientset() (kubernetes.Interface, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// Kubectl returns the real kubectl, pointed at this cluster as admin.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bins.Kubectl, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
	return cmd
}

func (c *Cluster) writePKI() (map[string]string, error) {
	dir := filepath.Join(c.Dir, "pki")
	files := map[string]string{}
	ca, err := NewCA(c.Name + "-ca")
	if err != nil {
		return nil, err
	}
	frontProxyCA, err := NewCA(c.Name + "-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	c.CAFile, c.FrontProxyCAFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "front-proxy-ca.crt")
	c.CAKeyFile = filepath.Join(dir, "ca.key")
	if err := os.WriteFile(c.CAKeyFile, ca.KeyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.CAFile, ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.FrontProxyCAFile, frontProxyCA.CertPEM, 0o644); err != nil {
		return nil, err
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	leaves := []struct {
		name string
		ca   *CA
		spec CertSpec
	}{
		{"apiserver", ca, CertSpec{CommonName: "kube-apiserver", Server: true, IPs: loopback,
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}}},
		{"admin", ca, CertSpec{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}, Client: true}},
		{"controller-manager", ca, CertSpec{CommonName: "system:kube-controller-manager", Client: true}},
		{"scheduler", ca, CertSpec{CommonName: "system:kube-scheduler", Client: true}},
		// kwok plays every node's kubelet and updates any pod: it needs more than system:node.
		{"kwok", ca, CertSpec{CommonName: "kwok", Organization: []string{"system:masters"}, Client: true}},
		{"kwok-serving", ca, CertSpec{CommonName: "kwok-kubelet", Server: true, IPs: loopback, DNSNames: []string{"localhost"}}},
		{"apiserver-kubelet-client", ca, CertSpec{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}, Client: true}},
		{"front-proxy-client", frontProxyCA, CertSpec{CommonName: "front-proxy-client", Client: true}},
	}
	for _, l := range leaves {
		kp, err := l.ca.Issue(l.spec)
		if err != nil {
			return nil, err
		}
		certFile, keyFile, err := kp.WriteFiles(dir, l.name)
		if err != nil {
			return nil, err
		}
		files[l.name+".crt"], files[l.name+".key"] = certFile, keyFile
	}
	files["sa.pub"], files["sa.key"], err = newSigningKeyPair(dir)
	return files, err
}

func (c *Cluster) writeKubeconfig(path, certFile, keyFile string) error {
	caData, err := os.ReadFile(c.CAFile)
	if err != nil {
		return err
	}
	certData, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	keyData, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.URL, CertificateAuthorityData: caData}
	cfg.AuthInfos[c.Name+"-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: certData, ClientKeyData: keyData}
	cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name + "-admin", Namespace: "default"}
	cfg.CurrentContext = c.Name
	return clientcmd.WriteToFile(*cfg, path)
}

// waitHTTP polls url until it answers 200, failing fast if the process that
// should serve it has exited (its log tail says why).
func (c *Cluster) waitHTTP(ctx context.Context, name, url string, tlsConfig *tls.Config) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	defer client.CloseIdleConnections()
	p := c.Process(name)
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if p != nil && p.Exited() {
			return false, fmt.Errorf("%s exited", name)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("cluster %s: %s did not become ready at %s: %w\n--- %s ---\n%s", c.Name, name, url, err, p.Log, p.LogTail(3000))
	}
	return nil
}

func (c *Cluster) waitReady(ctx context.Context, cs kubernetes.Interface, nodes int) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, name := range []string{"kube-controller-manager", "kube-scheduler", "kwok"} {
			if c.Process(name).Exited() {
				return false, fmt.Errorf("%s exited:\n%s", name, c.Process(name).LogTail(3000))
			}
		}
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		ready := 0
		for _, n := range list.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready < nodes {
			last = fmt.Sprintf("%d of %d nodes Ready", ready, nodes)
			return false, nil
		}
		// Pods are refused until the ServiceAccount controller has made "default".
		if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			last = "no default ServiceAccount yet: " + err.Error()
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("cluster %s not ready (%s): %w", c.Name, last, err)
	}
	return nil
}

// createFakeNode registers a node kwok manages. It has both a Hostname and an
// InternalIP address: kwok can drop a lone InternalIP when it re-initializes a node.
func createFakeNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
				{Type: corev1.NodeHostName, Address: name},
			},
		},
	}
	_, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// TLSConfig verifies the cluster's apiserver and presents no client certificate.
func (c *Cluster) TLSConfig() (*tls.Config, error) {
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no certificates in " + c.CAFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func tlsClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no certificates in " + caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
