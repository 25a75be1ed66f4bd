package charts

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// agentValues are the values the agent chart needs (its ci/test-values.yaml).
func agentValues(t *testing.T) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(filepath.Join(Agent, "ci", "test-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// with returns base with the dotted keys set, as helm's --set does.
func with(base map[string]any, sets ...string) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for _, s := range sets {
		key, value, _ := strings.Cut(s, "=")
		parts := strings.Split(key, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		var v any
		if err := yaml.Unmarshal([]byte(value), &v); err != nil {
			panic(err)
		}
		m[parts[len(parts)-1]] = v
	}
	return out
}

func lintMessages(l support.Linter, atLeast int) []string {
	var out []string
	for _, m := range l.Messages {
		if m.Severity >= atLeast {
			out = append(out, m.Error())
		}
	}
	return out
}

// TestLint is `helm lint` of both charts: clean with their defaults (the
// agent with the two values it requires).
func TestLint(t *testing.T) {
	for _, tc := range []struct {
		chart  string
		values map[string]any
	}{
		{Hub, nil},
		{Hub, map[string]any{"replicaCount": 3, "anonymousPassthrough": map[string]any{"enabled": true}}},
		{Agent, agentValues(t)},
	} {
		t.Run(tc.chart, func(t *testing.T) {
			l := lint.AllWithKubeVersionAndSchemaValidation(tc.chart, tc.values, Namespace, &Capabilities().KubeVersion, false)
			if msgs := lintMessages(l, support.WarningSev); len(msgs) > 0 {
				t.Errorf("helm lint %s:\n%s", tc.chart, strings.Join(msgs, "\n"))
			}
		})
	}
}

// TestLintRefuses: values the charts refuse, with what `helm lint` and
// `helm install` then say.
func TestLintRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chart  string
		values map[string]any
		want   string
		// template: a check of the templates (fail), which helm lint only
		// logs; the rest are values.schema.json's, which lint reports.
		template bool
	}{
		{"agent without parentURL", Agent, map[string]any{"registrationToken": "abcdef.0123456789abcdef"},
			"parentURL is required: the parent apiserver's https URL, e.g. --set parentURL=https://192.168.10.10:6443", true},
		{"agent without token", Agent, map[string]any{"parentURL": "https://parent:6443"},
			"registrationToken is required: make one in the parent with `kubectl clusternet create token`", true},
		{"agent parent over http", Agent, with(agentValues(t), "parentURL=http://parent:6443"),
			"at '/parentURL': 'http://parent:6443' does not match pattern", false},
		{"agent token of the wrong shape", Agent, with(agentValues(t), "registrationToken=07401b.f395accd246ae52"),
			"at '/registrationToken': '07401b.f395accd246ae52' does not match pattern", false},
		{"agent sync mode", Agent, with(agentValues(t), "syncMode=Sideways"),
			"at '/syncMode': value must be one of 'Push', 'Pull', 'Dual'", false},
		{"two agents", Agent, with(agentValues(t), "replicaCount=2"),
			"at '/replicaCount': maximum: got 2, want 1", false},
		{"agent parentCA not PEM", Agent, with(agentValues(t), "parentCA=/etc/ca.crt"),
			"parentCA must be PEM (\"-----BEGIN CERTIFICATE-----...\"): pass the file with --set-file parentCA=<ca.crt>", true},
		{"hub no replicas", Hub, with(nil, "replicaCount=0"),
			"at '/replicaCount': minimum: got 0, want 1", false},
		{"hub misspelt value", Hub, with(nil, "replicas=2"),
			"at '': additional properties 'replicas' not allowed", false},
		{"hub tls secret without a name", Hub, with(nil, "tls.mode=secret"),
			"tls.secretName is required when tls.mode is \"secret\"", true},
		{"hub tls secret without a CA", Hub, with(nil, "tls.mode=secret", "tls.secretName=hub-tls"),
			"tls.caBundle must be the PEM of the CA that signed tls.secretName's certificate", true},
		{"hub tls secretName in hubManaged mode", Hub, with(nil, "tls.secretName=hub-tls"),
			"tls.secretName and tls.caBundle are used only with tls.mode=secret, not \"hubManaged\"", true},
		{"hub replicas without leader election", Hub, with(nil, "replicaCount=2", "leaderElection.enabled=false"),
			"replicaCount 2 needs leaderElection.enabled=true", true},
		{"hub extraArgs with dashes", Hub, with(nil, "extraArgs.--v=4"),
			"extraArgs key \"--v\": write the flag name without dashes, e.g. \"v\"", true},
		{"hub agent label prefix reserved", Hub, with(nil, "admissionPolicies.agentLabelPrefixes=[node.clusternet.io/, clusters.clusternet.io/]"),
			"admissionPolicies.agentLabelPrefixes \"clusters.clusternet.io/\": labels under \"clusters.clusternet.io/\" are reserved for Clusternet and Kubernetes", true},
		{"hub agent label prefix without a domain", Hub, with(nil, "admissionPolicies.agentLabelPrefixes=[gpu-]"),
			"at '/admissionPolicies/agentLabelPrefixes/0': 'gpu-' does not match pattern", false},
		{"hub lease duration", Hub, with(nil, "leaderElection.leaseDuration='15'"),
			"at '/leaderElection/leaseDuration': '15' does not match pattern", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lint.AllWithKubeVersionAndSchemaValidation(tc.chart, tc.values, Namespace, &Capabilities().KubeVersion, false)
			msgs := lintMessages(l, support.ErrorSev)
			if !tc.template && !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
				t.Errorf("helm lint errors:\n%s\nwant one containing %q", strings.Join(msgs, "\n"), tc.want)
			}
			// helm install (client side) refuses the same values before
			// sending anything.
			ch, err := Load(tc.chart)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := templateChart(t, ch, tc.values); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// apiService is what the tests read of an APIService (the module does not
// depend on k8s.io/kube-aggregator for its types).
type apiService struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Group                 string `json:"group"`
		Version               string `json:"version"`
		GroupPriorityMinimum  int    `json:"groupPriorityMinimum"`
		VersionPriority       int    `json:"versionPriority"`
		InsecureSkipTLSVerify bool   `json:"insecureSkipTLSVerify"`
		CABundle              []byte `json:"caBundle"`
		Service               struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
			Port      int    `json:"port"`
		} `json:"service"`
	} `json:"spec"`
}

// templateChart is `helm template` (install --dry-run --client-only): the
// release's objects by kind/name, CRDs left out.
func templateChart(t *testing.T, loaded *chart.Chart, values map[string]any) (map[string]string, error) {
	t.Helper()
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = loaded.Name(), Namespace
	install.SkipCRDs = true
	install.KubeVersion = &Capabilities().KubeVersion
	rel, err := install.Run(loaded, values)
	if err != nil {
		return nil, err
	}
	objects := map[string]string{}
	for _, doc := range releaseutil.SplitManifests(rel.Manifest) {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		objects[meta.Kind+"/"+meta.Metadata.Name] = doc
	}
	return objects, nil
}

func decode[T any](t *testing.T, objects map[string]string, key string) *T {
	t.Helper()
	doc, ok := objects[key]
	if !ok {
		t.Fatalf("no %s rendered", key)
	}
	var obj T
	if err := yaml.UnmarshalStrict([]byte(doc), &obj); err != nil {
		t.Fatalf("%s: %v\n%s", key, err, doc)
	}
	return &obj
}

func mustTemplate(t *testing.T, chart string, values map[string]any) map[string]string {
	t.Helper()
	ch, err := Load(chart)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := templateChart(t, ch, values)
	if err != nil {
		t.Fatal(err)
	}
	return objects
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

var restricted = struct {
	pod       *corev1.PodSecurityContext
	container *corev1.SecurityContext
}{
	pod: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
	container: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
}

// TestTemplateHub is `helm template` of the hub chart: the objects, the
// args, the restricted security context, probes over HTTPS, and the
// APIServices' and webhook's caBundle in both certificate modes.
func TestTemplateHub(t *testing.T) {
	objects := mustTemplate(t, Hub, nil)
	want := []string{
		"APIService/v1alpha1.proxies.clusternet.io", "APIService/v1alpha1.shadow",
		"ClusterRole/clusternet:mcs-agent", "ClusterRole/clusternet:shadow-edit", "ClusterRole/clusternet:shadow-view", "ClusterRole/clusternet:system:bootstrapping",
		"ClusterRoleBinding/clusternet-hub", "ClusterRoleBinding/clusternet:system:bootstrapping",
		"Deployment/clusternet-hub", "FlowSchema/clusternet-registration", "PriorityLevelConfiguration/clusternet-registration",
		"Service/clusternet-hub", "ServiceAccount/clusternet-hub",
		"ValidatingAdmissionPolicy/clusternet-agent-changes-finalizers-only", "ValidatingAdmissionPolicy/clusternet-agent-reports-status-only",
		"ValidatingAdmissionPolicy/clusternet-not-acted-on-feedinventories", "ValidatingAdmissionPolicy/clusternet-not-acted-on-helm",
		"ValidatingAdmissionPolicy/clusternet-not-acted-on-managedclusters",
		"ValidatingAdmissionPolicy/clusternet-not-acted-on-subscriptions", "ValidatingAdmissionPolicy/clusternet-subscription-preemption",
		"ValidatingAdmissionPolicyBinding/clusternet-agent-changes-finalizers-only", "ValidatingAdmissionPolicyBinding/clusternet-agent-reports-status-only",
		"ValidatingAdmissionPolicyBinding/clusternet-not-acted-on-feedinventories", "ValidatingAdmissionPolicyBinding/clusternet-not-acted-on-helm",
		"ValidatingAdmissionPolicyBinding/clusternet-not-acted-on-managedclusters",
		"ValidatingAdmissionPolicyBinding/clusternet-not-acted-on-subscriptions", "ValidatingAdmissionPolicyBinding/clusternet-subscription-preemption",
		"ValidatingWebhookConfiguration/clusternet-hub-subscriptions",
	}
	if diff := cmp.Diff(want, sorted(keys(objects))); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	d := decode[appsv1.Deployment](t, objects, "Deployment/clusternet-hub")
	c := d.Spec.Template.Spec.Containers[0]
	if diff := cmp.Diff([]string{
		"--secure-port=6443", "--self-signed-certs=true", "--peer-advertise-address=$(POD_IP):6443",
		"--leader-elect=true", "--leader-elect-resource-namespace=clusternet-system", "--feature-gates=Deployer=true", "--v=2",
	}, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if c.Image != "ghcr.io/clusternet/clusternet-hub:v0.1.0" || *d.Spec.Replicas != 1 {
		t.Errorf("image %q, replicas %d: want the appVersion tag and 1 replica", c.Image, *d.Spec.Replicas)
	}
	if diff := cmp.Diff(restricted.pod, d.Spec.Template.Spec.SecurityContext); diff != "" {
		t.Errorf("pod security context (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(restricted.container, c.SecurityContext); diff != "" {
		t.Errorf("container security context (-want +got):\n%s", diff)
	}
	for probe, p := range map[string]*corev1.Probe{"/livez": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != probe || p.HTTPGet.Scheme != corev1.URISchemeHTTPS || p.HTTPGet.Port.String() != "https" {
			t.Errorf("probe %s: %+v", probe, p)
		}
	}
	for _, name := range []string{"v1alpha1.proxies.clusternet.io", "v1alpha1.shadow"} {
		a := decode[apiService](t, objects, "APIService/"+name)
		if len(a.Spec.CABundle) != 0 || a.Spec.InsecureSkipTLSVerify || a.Spec.Service.Namespace != Namespace {
			t.Errorf("APIService %s in mode hubManaged: caBundle %q, insecureSkipTLSVerify %t, service %+v: want no caBundle (the hub writes it)",
				name, a.Spec.CABundle, a.Spec.InsecureSkipTLSVerify, a.Spec.Service)
		}
	}

	t.Run("tls secret", func(t *testing.T) {
		const ca = "-----BEGIN CERTIFICATE-----\nMIIBmade-up\n-----END CERTIFICATE-----\n"
		objects := mustTemplate(t, Hub, map[string]any{"tls": map[string]any{"mode": "secret", "secretName": "hub-tls", "caBundle": ca}})
		a := decode[apiService](t, objects, "APIService/v1alpha1.proxies.clusternet.io")
		w := decode[admissionregistrationv1.ValidatingWebhookConfiguration](t, objects, "ValidatingWebhookConfiguration/clusternet-hub-subscriptions")
		if string(a.Spec.CABundle) != ca || string(w.Webhooks[0].ClientConfig.CABundle) != ca {
			t.Errorf("caBundle: APIService %q, webhook %q, want %q", a.Spec.CABundle, w.Webhooks[0].ClientConfig.CABundle, ca)
		}
		d := decode[appsv1.Deployment](t, objects, "Deployment/clusternet-hub")
		c := d.Spec.Template.Spec.Containers[0]
		if diff := cmp.Diff([]string{"--secure-port=6443", "--tls-cert-file=/etc/clusternet-hub/tls/tls.crt", "--tls-private-key-file=/etc/clusternet-hub/tls/tls.key",
			"--peer-advertise-address=$(POD_IP):6443"}, c.Args[:4]); diff != "" {
			t.Errorf("args (-want +got):\n%s", diff)
		}
		var secret string
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				secret = v.Secret.SecretName
			}
		}
		if secret != "hub-tls" {
			t.Errorf("the pod mounts Secret %q, want hub-tls", secret)
		}
	})

	t.Run("values", func(t *testing.T) {
		objects := mustTemplate(t, Hub, with(nil,
			"replicaCount=3", "image.digest=sha256:"+strings.Repeat("ab", 32), "featureGates.Deployer=false",
			"leaderElection.leaseDuration=30s", "extraArgs.registration-approval=manual", "extraArgs.v=4", "anonymousPassthrough.enabled=true",
			"webhook.enabled=false", "flowControl.enabled=false", "admissionPolicies.enabled=false"))
		d := decode[appsv1.Deployment](t, objects, "Deployment/clusternet-hub")
		c := d.Spec.Template.Spec.Containers[0]
		if diff := cmp.Diff([]string{
			"--secure-port=6443", "--self-signed-certs=true", "--peer-advertise-address=$(POD_IP):6443",
			"--leader-elect=true", "--leader-elect-resource-namespace=clusternet-system", "--leader-elect-lease-duration=30s",
			"--feature-gates=Deployer=false", "--v=2", "--registration-approval=manual", "--v=4",
		}, c.Args); diff != "" {
			t.Errorf("args (-want +got):\n%s", diff)
		}
		if want := "ghcr.io/clusternet/clusternet-hub@sha256:" + strings.Repeat("ab", 32); c.Image != want || *d.Spec.Replicas != 3 {
			t.Errorf("image %q replicas %d, want %q and 3", c.Image, *d.Spec.Replicas, want)
		}
		for _, key := range []string{"ClusterRole/clusternet:anonymous-impersonation", "ClusterRoleBinding/clusternet:anonymous-impersonation",
			"ClusterRole/clusternet:socket-proxy", "ClusterRoleBinding/clusternet:socket-proxy"} {
			if _, ok := objects[key]; !ok {
				t.Errorf("anonymousPassthrough.enabled=true renders no %s", key)
			}
		}
		for _, key := range []string{"ValidatingWebhookConfiguration/clusternet-hub-subscriptions", "FlowSchema/clusternet-registration",
			"ValidatingAdmissionPolicy/clusternet-agent-reports-status-only", "ValidatingAdmissionPolicy/clusternet-not-acted-on-subscriptions"} {
			if _, ok := objects[key]; ok {
				t.Errorf("%s rendered although disabled", key)
			}
		}
	})
}

// TestTemplateAgent is `helm template` of the agent chart.
// The label prefixes agents may set on their ManagedCluster are the hub
// chart's admissionPolicies.agentLabelPrefixes, for agents that aggregate
// node labels under prefixes of their own (--label-aggregate-prefix).
func TestTemplateHubAgentLabelPrefixes(t *testing.T) {
	for _, tc := range []struct {
		values map[string]any
		want   string
	}{
		{nil, "['node.clusternet.io/', 'feature.node.kubernetes.io/']"},
		{with(nil, "admissionPolicies.agentLabelPrefixes=[gpu.example.com/, node.clusternet.io/zone-]"), "['gpu.example.com/', 'node.clusternet.io/zone-']"},
	} {
		objects := mustTemplate(t, Hub, tc.values)
		p := decode[admissionregistrationv1.ValidatingAdmissionPolicy](t, objects, "ValidatingAdmissionPolicy/clusternet-agent-reports-status-only")
		i := slices.IndexFunc(p.Spec.Variables, func(v admissionregistrationv1.Variable) bool { return v.Name == "prefixes" })
		if i < 0 {
			t.Fatalf("no variable prefixes in %+v", p.Spec.Variables)
		}
		if got := p.Spec.Variables[i].Expression; got != tc.want {
			t.Errorf("prefixes = %s, want %s", got, tc.want)
		}
	}
}

func TestTemplateAgent(t *testing.T) {
	const ca = "-----BEGIN CERTIFICATE-----\nMIIBmade-up\n-----END CERTIFICATE-----\n"
	values := with(agentValues(t), "clusterLabels.env=prod", "clusterLabels.team=a", "syncMode=Pull")
	values["parentCA"] = ca
	objects := mustTemplate(t, Agent, values)
	want := []string{
		"ClusterRole/clusternet-agent", "ClusterRole/clusternet-agent-deployer", "ClusterRole/clusternet-agent-impersonation",
		"ClusterRoleBinding/clusternet-agent", "ClusterRoleBinding/clusternet-agent-deployer", "ClusterRoleBinding/clusternet-agent-impersonation",
		"Deployment/clusternet-agent", "Role/clusternet-agent", "RoleBinding/clusternet-agent",
		"Secret/clusternet-agent-cluster-registration", "ServiceAccount/clusternet-agent",
	}
	if diff := cmp.Diff(want, sorted(keys(objects))); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	s := decode[corev1.Secret](t, objects, "Secret/clusternet-agent-cluster-registration")
	if diff := cmp.Diff(map[string]string{"parentURL": "https://parent.example.com:6443", "regToken": "abcdef.0123456789abcdef", "parentCA": strings.TrimSpace(ca)}, s.StringData); diff != "" {
		t.Errorf("registration Secret (-want +got):\n%s", diff)
	}
	d := decode[appsv1.Deployment](t, objects, "Deployment/clusternet-agent")
	c := d.Spec.Template.Spec.Containers[0]
	if diff := cmp.Diff([]string{
		"--agent-namespace=clusternet-system", "--registration-secret=clusternet-system/clusternet-agent-cluster-registration",
		"--cluster-sync-mode=Pull", "--cluster-status-update-frequency=3m", "--cluster-labels=env=prod,team=a",
		"--feature-gates=AppPusher=true", "--health-probe-bind-address=:8081", "--metrics-bind-address=:8080", "--v=2",
	}, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(restricted.pod, d.Spec.Template.Spec.SecurityContext); diff != "" {
		t.Errorf("pod security context (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(restricted.container, c.SecurityContext); diff != "" {
		t.Errorf("container security context (-want +got):\n%s", diff)
	}
	for probe, p := range map[string]*corev1.Probe{"/livez": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != probe || p.HTTPGet.Port.String() != "health" {
			t.Errorf("probe %s: %+v", probe, p)
		}
	}
	if diff := cmp.Diff([]corev1.ContainerPort{{Name: "health", ContainerPort: 8081, Protocol: "TCP"}, {Name: "metrics", ContainerPort: 8080, Protocol: "TCP"}}, c.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}

	t.Run("multi-cluster services rights only with the gate on", func(t *testing.T) {
		objects := mustTemplate(t, Agent, with(agentValues(t), "featureGates.MultiClusterService=true"))
		for _, key := range []string{"ClusterRole/clusternet-agent-mcs", "ClusterRoleBinding/clusternet-agent-mcs"} {
			if _, ok := objects[key]; !ok {
				t.Errorf("%s not rendered with the gate on", key)
			}
		}
	})

	t.Run("own Secret, no deployer rights", func(t *testing.T) {
		objects := mustTemplate(t, Agent, with(nil, "registrationSecret.create=false", "registrationSecret.name=mine", "rbac.deployer=false"))
		for _, key := range []string{"Secret/clusternet-agent-cluster-registration", "Secret/mine", "ClusterRole/clusternet-agent-deployer"} {
			if _, ok := objects[key]; ok {
				t.Errorf("%s rendered", key)
			}
		}
		d := decode[appsv1.Deployment](t, objects, "Deployment/clusternet-agent")
		if got := d.Spec.Template.Spec.Containers[0].Args[1]; got != "--registration-secret=clusternet-system/mine" {
			t.Errorf("args[1] = %q", got)
		}
	})
}

// TestCRDsCopied: the hub chart ships the CRDs `make generate` writes to
// deploy/crds, unchanged.
func TestCRDsCopied(t *testing.T) {
	want, err := filepath.Glob(filepath.Join("..", "deploy", "crds", "*.yaml"))
	if err != nil || len(want) == 0 {
		t.Fatalf("no CRDs in deploy/crds: %v", err)
	}
	got, _ := filepath.Glob(filepath.Join(Hub, "crds", "*.yaml"))
	if len(got) != len(want) {
		t.Errorf("%s/crds has %d files, deploy/crds %d: run 'make generate'", Hub, len(got), len(want))
	}
	for _, f := range want {
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(Hub, "crds", filepath.Base(f)))
		if err != nil || string(a) != string(b) {
			t.Errorf("%s/crds/%s differs from deploy/crds (%v): run 'make generate'", Hub, filepath.Base(f), err)
		}
	}
}
