package hub

import (
	"testing"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes/fake"
)

// TestProfilingFlag: the generic API server installs /debug/pprof only
// with --profiling, which is off unless given (Kubernetes components have
// it on).
func TestProfilingFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want bool
	}{
		{name: "default: off"},
		{name: "--profiling", args: []string{"--profiling"}, want: true},
		{name: "--profiling=false", args: []string{"--profiling=false"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			fss := o.Flags()
			if err := fss.FlagSet("features").Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			config := genericapiserver.NewRecommendedConfig(codecs)
			if err := o.Recommended.Features.ApplyTo(&config.Config, fake.NewClientset(), nil); err != nil {
				t.Fatal(err)
			}
			if config.EnableProfiling != tc.want || config.EnableContentionProfiling {
				t.Errorf("EnableProfiling %v, EnableContentionProfiling %v; want %v, false", config.EnableProfiling, config.EnableContentionProfiling, tc.want)
			}
		})
	}
	fss := NewOptions().Flags()
	if usage := fss.FlagSet("features").Lookup("profiling").Usage; usage != profilingUsage {
		t.Errorf("--profiling help %q, want the hub's (it names who may reach the profiles)", usage)
	}
}
