package clusterapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/yaml"

	"github.com/clusternet/clusternet/charts"
	"github.com/clusternet/clusternet/pkg/bootstraptoken"
)

// agentChart renders charts/clusternet-agent, as shipped in this binary,
// for one discovered cluster: the same chart, rendered the same way
// (charts.Render), that deploy/agent and the testbed's agents come from.
type agentChart struct {
	parentURL string
	// parentCA is PEM; nil leaves the agents with their image's roots.
	parentCA []byte
	// base are --cluster-api-agent-values, under what the hub sets.
	base map[string]any
}

// install is what the hub applies into one cluster.
type install struct {
	objects []*unstructured.Unstructured
	// digest identifies the install apart from its bootstrap token: the
	// kubeconfig Secret's version and every object but the registration
	// Secret. An unchanged digest needs no new apply.
	digest string
}

// values are the chart values for cluster: the hub's own over base. A nil
// token renders no registration Secret (registrationSecret.create=false),
// for a cluster already registered, whose agent keeps what its Secret holds.
func (a agentChart) values(cluster *clusterv1.Cluster, token *bootstraptoken.Token) map[string]any {
	v := maps.Clone(a.base)
	if v == nil {
		v = map[string]any{}
	}
	v["createNamespace"] = true
	v["parentURL"] = a.parentURL
	if len(a.parentCA) > 0 {
		v["parentCA"] = string(a.parentCA)
	}
	// A name the agent may ask for; otherwise the hub generates one.
	if len(validation.IsDNS1123Label(cluster.Name)) == 0 {
		v["clusterName"] = cluster.Name
	}
	secret := map[string]any{}
	if base, ok := v["registrationSecret"].(map[string]any); ok {
		secret = maps.Clone(base)
	}
	secret["create"] = token != nil
	v["registrationSecret"] = secret
	if token != nil {
		v["registrationToken"] = token.String()
	}
	return v
}

// render renders the agent's objects for cluster. kubeconfigVersion
// (the Secret's UID and resourceVersion) goes into the digest, so that a
// rotated kubeconfig applies again.
func (a agentChart) render(cluster *clusterv1.Cluster, token *bootstraptoken.Token, kubeconfigVersion string) (install, error) {
	ch, err := charts.Load(charts.Agent)
	if err != nil {
		return install{}, err
	}
	rendered, err := charts.Render(ch, charts.Options{Values: a.values(cluster, token)})
	if err != nil {
		return install{}, fmt.Errorf("rendering %s (check --%s): %w", charts.Agent, FlagAgentValues, err)
	}
	sum := sha256.New()
	sum.Write([]byte(kubeconfigVersion))
	var out install
	for _, doc := range rendered.Manifests() {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			return install{}, fmt.Errorf("chart %s renders a document that does not parse: %w", charts.Agent, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		out.objects = append(out.objects, obj)
		if obj.GetKind() == "Secret" && obj.GetAPIVersion() == "v1" {
			continue
		}
		b, err := json.Marshal(obj.Object) // sorted keys: stable
		if err != nil {
			return install{}, err
		}
		sum.Write(b)
	}
	out.digest = hex.EncodeToString(sum.Sum(nil))[:32]
	charts.SortForInstall(out.objects)
	return out, nil
}
