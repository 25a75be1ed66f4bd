package docs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExampleLines(t *testing.T) {
	text := `  # Create a single ingress called 'simple'
  kubectl clusternet create ingress simple --rule="foo.com/bar=svc1:8080,tls=my-cert"
  
  # Create an ingress with multiple hosts
  kubectl clusternet create ingress multipath --class=default \
  --rule="foo.com/=svc:port" \
  --rule="foo.com/admin/=svcadmin:portadmin"`
	want := []string{
		`kubectl clusternet create ingress simple --rule="foo.com/bar=svc1:8080,tls=my-cert"`,
		`kubectl clusternet create ingress multipath --class=default --rule="foo.com/=svc:port" --rule="foo.com/admin/=svcadmin:portadmin"`,
	}
	if diff := cmp.Diff(want, exampleLines(text)); diff != "" {
		t.Errorf("exampleLines (-want +got):\n%s", diff)
	}
}
