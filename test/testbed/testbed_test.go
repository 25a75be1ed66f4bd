package testbed

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os/exec"
	"testing"
	"time"
)

// A port another process holds (its flock) or binds is skipped.
func TestReservePortSkipsHeldAndBoundPorts(t *testing.T) {
	dir := t.TempDir()
	candidates := func(ports ...int) func() int {
		return func() int { p := ports[0]; ports = ports[1:]; return p }
	}
	reserve := func(next func() int) *portLock {
		t.Helper()
		p, err := reservePortFrom(dir, next)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	held := reserve(randomPort)
	defer held.release()
	// A second port known to be free: reserve it, then let it go.
	spare := reserve(randomPort)
	spare.release()

	// flock is per open file, so a second open in this process stands in for
	// another test process holding the port.
	got := reserve(candidates(held.Port, spare.Port))
	if got.Port != spare.Port {
		t.Errorf("reserved %d, want %d: %d is held", got.Port, spare.Port, held.Port)
	}
	got.release()

	bound, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bound.Close() }()
	boundPort := bound.Addr().(*net.TCPAddr).Port
	got = reserve(candidates(boundPort, spare.Port))
	if got.Port != spare.Port {
		t.Errorf("reserved %d, want %d: %d is bound", got.Port, spare.Port, boundPort)
	}
	got.release()
}

func TestIssuedCertificatesVerify(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(CertSpec{CommonName: "kube-apiserver", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(kp.CertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("serving certificate does not verify for 127.0.0.1: %v", err)
	}
}

// A recorded pid that now runs another program (pid reuse) must survive Stop.
func TestStopKillsOnlyWhatItStarted(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	other := exec.Command(sleep, "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })

	// The pid is alive, but runs another binary than the record says: to Stop
	// that is not our process, so it must not be signalled.
	stranger := &Process{Name: "etcd", Binary: "/nonexistent/etcd", Pid: other.Process.Pid}
	if stranger.alive() {
		t.Fatal("a pid running another binary counts as ours")
	}
	if err := stranger.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	if !(&Process{Binary: sleep, Pid: other.Process.Pid}).alive() {
		t.Fatal("Stop killed a process running a binary it did not start")
	}

	ours, err := startProcess(t.TempDir(), "sleep", sleep, "30")
	if err != nil {
		t.Fatal(err)
	}
	if ours.Exited() {
		t.Fatal("process exited at once")
	}
	if err := ours.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ours.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end the process it started")
	}
}

// A cluster runs the control plane of the version it asks for; a version
// the testbed has no binaries of is refused, saying how to build them.
func TestControlPlaneOfVersion(t *testing.T) {
	bins := &Binaries{
		ControlPlane: controlPlaneIn("/cache", "v1.35.4"),
		Skew:         controlPlaneIn("/cache", "v1.33.13"),
	}
	for _, tc := range []struct {
		name, version, wantAPIServer, wantErr string
	}{
		{name: "default", version: "", wantAPIServer: "/cache/kubernetes-v1.35.4/kube-apiserver"},
		{name: "the parent's", version: "v1.35.4", wantAPIServer: "/cache/kubernetes-v1.35.4/kube-apiserver"},
		{name: "the skew child's", version: "v1.33.13", wantAPIServer: "/cache/kubernetes-v1.33.13/kube-apiserver"},
		{name: "not built", version: "v1.30.0", wantErr: `ClusterOptions.KubeVersion "v1.30.0": the testbed has Kubernetes v1.35.4 and v1.33.13 only; set CHILD_SKEW_VERSION=v1.30.0 (or KUBE_VERSION) and run hack/testbed-build.sh`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bins.controlPlane(tc.version)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.KubeAPIServer != tc.wantAPIServer {
				t.Errorf("kube-apiserver %s, want %s", got.KubeAPIServer, tc.wantAPIServer)
			}
		})
	}
}
