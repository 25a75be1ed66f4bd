package framework

import (
	"fmt"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/clusternet/clusternet/charts"
	"github.com/clusternet/clusternet/test/testbed"
)

// ChartContainer is what a chart's Deployment runs: the args and env of its
// one container, and everything else the chart renders.
type ChartContainer struct {
	Args []string
	// Env is the container's env as rendered, valueFrom included (the hub's
	// POD_NAME, POD_NAMESPACE, POD_IP): EnvFor resolves it for a process.
	Env        []corev1.EnvVar
	Deployment *appsv1.Deployment
	// Manifests are every object the chart renders, one YAML document each
	// (the agent's registration Secret among them).
	Manifests []string
}

// ChartArgs renders chart (charts.Hub or charts.Agent) for namespace
// clusternet-system as `helm template` does, values over the chart's
// defaults (the same map `helm install --values` takes), and returns what
// its Deployment runs. So the testbed runs the hub and agents with exactly
// the args and env the charts ship; a test adds only what differs on
// loopback (kubeconfig, ports, certificate files), after these, where the
// last flag wins.
func ChartArgs(chart string, values map[string]any) (*ChartContainer, error) {
	ch, err := charts.Load(chart)
	if err != nil {
		return nil, err
	}
	rendered, err := charts.Render(ch, charts.Options{Values: values})
	if err != nil {
		return nil, err
	}
	out := &ChartContainer{Manifests: rendered.Manifests()}
	for _, doc := range out.Manifests {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, fmt.Errorf("chart %s renders a document that does not parse: %w\n%s", chart, err, doc)
		}
		if meta.Kind != "Deployment" {
			continue
		}
		if out.Deployment != nil {
			return nil, fmt.Errorf("chart %s renders more than one Deployment", chart)
		}
		out.Deployment = &appsv1.Deployment{}
		if err := yaml.UnmarshalStrict([]byte(doc), out.Deployment); err != nil {
			return nil, fmt.Errorf("chart %s: its Deployment: %w", chart, err)
		}
	}
	if out.Deployment == nil {
		return nil, fmt.Errorf("chart %s renders no Deployment", chart)
	}
	containers := out.Deployment.Spec.Template.Spec.Containers
	if len(containers) != 1 {
		return nil, fmt.Errorf("chart %s: its Deployment has %d containers, want 1", chart, len(containers))
	}
	out.Args, out.Env = containers[0].Args, containers[0].Env
	return out, nil
}

// HubChartArgs are the hub chart's args and env with its default values.
func HubChartArgs() (*ChartContainer, error) { return ChartArgs(charts.Hub, nil) }

// AgentChartValues are the agent chart's values for a child of parent, as a
// platform team would install it: the parent's URL, the bootstrap token
// InstallParent made, and the parent's CA. The Predictor gate is on (it is
// off by default), so that every test's hub divides dynamically by what the
// children report they can still take, through the chart value a platform
// team sets to turn it on.
func AgentChartValues(parent *testbed.Cluster) (map[string]any, error) {
	values := map[string]any{"parentURL": parent.URL, "registrationToken": BootstrapToken(parent),
		"featureGates": map[string]any{"Predictor": true}}
	if parent.CAFile != "" {
		ca, err := os.ReadFile(parent.CAFile)
		if err != nil {
			return nil, err
		}
		values["parentCA"] = string(ca)
	}
	return values, nil
}

// AgentChartArgs are the agent chart's args and env for a child of parent
// (AgentChartValues).
func AgentChartArgs(parent *testbed.Cluster) (*ChartContainer, error) {
	values, err := AgentChartValues(parent)
	if err != nil {
		return nil, err
	}
	return ChartArgs(charts.Agent, values)
}

// ArgsFor are Args as the kubelet runs them in pod: $(NAME) references to
// the container's env expanded (the hub's --peer-advertise-address uses
// $(POD_IP)), $$ an escaped $.
func (c *ChartContainer) ArgsFor(pod PodFacts) ([]string, error) {
	env, err := EnvFor(c.Env, pod)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = expand(a, vars)
	}
	return args, nil
}

// expand does what the kubelet does to args: $(NAME) becomes NAME's value
// when NAME is defined (else stays as written), $$ becomes $.
func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := vars[name]; ok {
					b.WriteString(v)
					i += 2 + end
					continue
				}
			}
			b.WriteByte('$')
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// PodFacts stand in for what the downward API gives a pod.
type PodFacts struct {
	Name, Namespace, IP string
}

// EnvFor turns env into NAME=value pairs for a local process: literal
// values as they are, the downward API fields the charts use from pod.
// Anything else (Secret or ConfigMap references) is an error naming it, so
// a chart change that a local run cannot follow is noticed.
func EnvFor(env []corev1.EnvVar, pod PodFacts) ([]string, error) {
	out := make([]string, 0, len(env))
	for _, e := range env {
		switch {
		case e.ValueFrom == nil:
			out = append(out, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil:
			var v string
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				v = pod.Name
			case "metadata.namespace":
				v = pod.Namespace
			case "status.podIP":
				v = pod.IP
			default:
				return nil, fmt.Errorf("env %s: field %q of the downward API has no local stand-in: add one to framework.EnvFor", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			out = append(out, e.Name+"="+v)
		default:
			return nil, fmt.Errorf("env %s: only literal values and downward API fields run locally, not %s", e.Name, strings.TrimSpace(e.ValueFrom.String()))
		}
	}
	return out, nil
}
