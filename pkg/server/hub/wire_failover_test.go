package hub

import (
	"strings"
	"testing"
	"time"
)

// TestFailoverFlag: --cluster-failover-grace-period defaults to 5m, and a
// grace period that is not positive is refused at start, naming the flag.
func TestFailoverFlag(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantGrace time.Duration
		wantErr   string
	}{
		{name: "default", wantGrace: 5 * time.Minute},
		{name: "set", args: []string{"--cluster-failover-grace-period=10s"}, wantGrace: 10 * time.Second},
		{name: "zero", args: []string{"--cluster-failover-grace-period=0s"},
			wantErr: `--cluster-failover-grace-period "0s": must be positive`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			fss := o.Flags()
			if err := fss.FlagSet("failover").Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.wantErr == "" && o.FailoverGracePeriod != tc.wantGrace {
				t.Errorf("grace period %s, want %s", o.FailoverGracePeriod, tc.wantGrace)
			}
		})
	}
}
