package lifecycle

import (
	"k8s.io/apimachinery/pkg/runtime"

	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// newClusternetFake is the generated fake for Clusternet's own groups. It is
// the "simple" one because the field-managed NewClientset needs an OpenAPI
// schema of these types, which arrives with the aggregated API server's
// openapi-gen output.
func newClusternetFake(objects ...runtime.Object) *clusternetfake.Clientset {
	return clusternetfake.NewSimpleClientset(objects...)
}
