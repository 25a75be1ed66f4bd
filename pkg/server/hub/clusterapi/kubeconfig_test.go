package clusterapi

import (
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestChildConfigRefusesWhatReachesBeyondTheSecret(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)
		wantErr string
	}{
		{name: "inline token, as cluster-api writes"},
		{name: "inline client certificate", edit: func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Token, u.ClientCertificateData, u.ClientKeyData = "", []byte("cert"), []byte("key")
		}},
		{name: "exec plugin", edit: func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Exec = &clientcmdapi.ExecConfig{Command: "sh", APIVersion: "client.authentication.k8s.io/v1"}
		}, wantErr: `users["workload-admin"].exec: a credential plugin would run a program inside the hub`},
		{name: "auth provider", edit: func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc"}
		}, wantErr: `users["workload-admin"].auth-provider: an auth provider plugin runs inside the hub`},
		{name: "token file", edit: func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Token, u.TokenFile = "", "/var/run/secrets/kubernetes.io/serviceaccount/token"
		}, wantErr: `users["workload-admin"].tokenFile: a file path on the hub`},
		{name: "client key file", edit: func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.ClientCertificate, u.ClientKey = "/etc/tls.crt", "/etc/tls.key"
		}, wantErr: `users["workload-admin"].client-certificate: a file path on the hub`},
		{name: "CA file", edit: func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.CertificateAuthorityData, c.CertificateAuthority = nil, "/etc/ca.crt"
		}, wantErr: `clusters["workload"].certificate-authority: a file path on the hub`},
		{name: "insecure", edit: func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.CertificateAuthorityData, c.InsecureSkipTLSVerify = nil, true
		}, wantErr: `clusters["workload"].insecure-skip-tls-verify: the hub verifies the clusters it installs into`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := childConfig(kubeconfigFor(childServer, tc.edit), &rest.Config{UserAgent: "clusternet-hub/test", QPS: 50, Burst: 100})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Host != childServer || cfg.Timeout != childTimeout || cfg.QPS != 50 || cfg.Burst != 100 || cfg.UserAgent != "clusternet-hub/test" {
					t.Errorf("config host %s timeout %s QPS %v burst %d agent %q, want %s, %s and the hub's", cfg.Host, cfg.Timeout, cfg.QPS, cfg.Burst, cfg.UserAgent, childServer, childTimeout)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}

	t.Run("another context's plugin is never looked at", func(t *testing.T) {
		cfg, err := clientcmd.Load(kubeconfigFor(childServer, nil))
		if err != nil {
			t.Fatal(err)
		}
		cfg.AuthInfos["other"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "sh", APIVersion: "client.authentication.k8s.io/v1"}}
		cfg.Contexts["other"] = &clientcmdapi.Context{Cluster: "workload", AuthInfo: "other"}
		data, err := clientcmd.Write(*cfg)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := childConfig(data, &rest.Config{})
		if err != nil {
			t.Fatalf("refused for another context's user: %v", err)
		}
		if rc.ExecProvider != nil || rc.BearerToken != "admin-token" {
			t.Errorf("config uses exec %v and token %q, want the current context's token", rc.ExecProvider, rc.BearerToken)
		}
	})
}
