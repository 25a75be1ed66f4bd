package hub

import (
	"strings"
	"testing"
)

// TestClusterAPIFlags: the hub parses the --cluster-api-* flags and refuses
// a half-configured discovery at start, before any leader runs it.
func TestClusterAPIFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "off by default"},
		{name: "on", args: []string{"--cluster-api-namespaces=capi-a,capi-b", "--cluster-api-parent-url=https://parent.example.com:6443"}},
		{name: "a management cluster but no namespaces", args: []string{"--cluster-api-kubeconfig=/etc/capi.conf"},
			wantErr: `--cluster-api-kubeconfig "/etc/capi.conf" needs --cluster-api-namespaces`},
		{name: "namespaces but no parent URL", args: []string{"--cluster-api-namespaces=capi-a"},
			wantErr: "--cluster-api-parent-url is required with --cluster-api-namespaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			fss := o.Flags()
			fs := fss.FlagSet("cluster-api discovery")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
