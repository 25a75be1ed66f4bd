package testbed

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os/exec"
	"testing"
	"time"
)

func TestReservePortIsExclusive(t *testing.T) {
	seen := map[int]bool{}
	var held []*portLock
	for range 20 {
		p, err := reservePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p.Port] {
			t.Fatalf("port %d reserved twice while still held", p.Port)
		}
		if p.Port < portMin || p.Port >= portMax {
			t.Errorf("port %d outside [%d,%d)", p.Port, portMin, portMax)
		}
		seen[p.Port] = true
		held = append(held, p)
	}
	for _, p := range held {
		p.release()
	}
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

	stranger := &Process{Name: "etcd", Binary: "/nonexistent/etcd", Pid: other.Process.Pid}
	if err := stranger.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	// Give a wrongly sent signal time to land before looking.
	time.Sleep(100 * time.Millisecond)
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
