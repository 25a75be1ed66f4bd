package hub

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReplicaFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // Validate's error, "" for none
	}{
		{name: "defaults", want: ""},
		{name: "a CA certificate without its key", args: []string{"--peer-ca-cert-file=ca.crt"},
			want: `--peer-ca-cert-file "ca.crt" and --peer-ca-key-file "": set both or neither`},
		{name: "a lease too short to renew", args: []string{"--peer-lease-duration=1s"},
			want: "--peer-lease-duration 1s: must be at least 3s"},
		{name: "an address without a port", args: []string{"--peer-advertise-address=10.0.0.7"},
			want: `--peer-advertise-address "10.0.0.7": must be host:port, e.g. 10.0.0.7:6443`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			fss := o.Flags()
			fs := fss.FlagSet("replicas and certificates")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got := ""
			if err := errors.Join(o.validateReplicas()...); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("validation: %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReplicaDefaults(t *testing.T) {
	o := NewOptions()
	if o.Replicas.PeerLeaseDuration != 15*time.Second || !o.Replicas.SelfSignedCerts {
		t.Errorf("defaults: %+v, want a 15s peer lease and self-signed certificates", o.Replicas)
	}
	o.Recommended.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	o.Recommended.SecureServing.BindPort = 7443
	if got, err := o.peerAddress(); err != nil || got != "127.0.0.1:7443" {
		t.Errorf("peer address = %q, %v; want the bind address and port", got, err)
	}
	o.Replicas.PeerAdvertiseAddress = "10.1.2.3:6443"
	if got, _ := o.peerAddress(); got != "10.1.2.3:6443" {
		t.Errorf("peer address = %q, want --peer-advertise-address", got)
	}
	dns, ips := o.servingCertNames()
	if diff := cmp.Diff([]string{"clusternet-hub.clusternet-system.svc", "clusternet-hub.clusternet-system.svc.cluster.local", "localhost"}, dns); diff != "" {
		t.Errorf("serving certificate DNS names (-want +got):\n%s", diff)
	}
	if len(ips) != 1 || !ips[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("serving certificate IPs = %v, want 127.0.0.1", ips)
	}
}
