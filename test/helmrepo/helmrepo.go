// Package helmrepo serves Helm charts on loopback for tests: a tiny chart
// built in memory, an http chart repository (index.yaml + .tgz), and an
// in-process OCI registry (distribution's, in-memory storage) the charts are
// pushed to with Helm's registry client. Both can require basic auth.
package helmrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory" // the registry's storage
	"github.com/sirupsen/logrus"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"
)

// DemoValues are the demo chart's default values.
const DemoValues = `# The ConfigMap's name; empty means <release>-config.
configName: ""
message: hello
replicas: 1
image: registry.invalid/demo:1
`

// DemoChart is a tiny chart named name at version: a ConfigMap holding
// .Values.message and the chart version, and a Deployment whose pods kwok
// runs. A configName that is not a valid object name makes its install fail
// in the cluster (the apiserver rejects the ConfigMap).
func DemoChart(name, version string) *chart.Chart {
	var values map[string]any
	if err := yaml.Unmarshal([]byte(DemoValues), &values); err != nil {
		panic(err)
	}
	file := func(name, data string) *chart.File { return &chart.File{Name: name, Data: []byte(data)} }
	return &chart.Chart{
		Metadata: &chart.Metadata{
			APIVersion:  chart.APIVersionV2,
			Name:        name,
			Version:     version,
			AppVersion:  "1.0.0",
			Type:        "application",
			Description: "A tiny chart for Clusternet's tests",
		},
		Values: values,
		Raw:    []*chart.File{file(chartutil.ValuesfileName, DemoValues)},
		Templates: []*chart.File{
			file("templates/configmap.yaml", `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Values.configName | default (printf "%s-config" .Release.Name) }}
data:
  message: {{ .Values.message | quote }}
  chartVersion: {{ .Chart.Version | quote }}
`),
			file("templates/deployment.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels: {app: {{ .Release.Name | quote }}}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name | quote }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name | quote }}}
    spec:
      containers:
        - name: app
          image: {{ .Values.image | quote }}
`),
			file("templates/NOTES.txt", `{{ .Chart.Name }} {{ .Chart.Version }} is installed as {{ .Release.Name }}.`),
		},
	}
}

// Package is ch as a .tgz archive.
func Package(ch *chart.Chart) ([]byte, error) {
	dir, err := os.MkdirTemp("", "helmrepo-package-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path, err := chartutil.Save(ch, dir)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// Option configures a Repo or a Registry.
type Option func(*options)

type options struct{ username, password string }

// WithBasicAuth requires these credentials.
func WithBasicAuth(username, password string) Option {
	return func(o *options) { o.username, o.password = username, password }
}

func (o *options) wrap(h http.Handler) http.Handler {
	if o.username == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != o.username || p != o.password {
			w.Header().Set("WWW-Authenticate", `Basic realm="helmrepo"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Repo is an http chart repository on 127.0.0.1.
type Repo struct {
	// URL is the repository's URL (spec.repo).
	URL    string
	server *httptest.Server

	mu       sync.Mutex
	index    *repo.IndexFile
	archives map[string][]byte
	status   int
}

// NewRepo starts an empty repository, closed when t ends.
func NewRepo(t testing.TB, opts ...Option) *Repo {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	r := &Repo{index: repo.NewIndexFile(), archives: map[string][]byte{}}
	r.server = httptest.NewServer(o.wrap(http.HandlerFunc(r.serve)))
	r.URL = r.server.URL + "/charts"
	t.Cleanup(r.server.Close)
	return r
}

func (r *Repo) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status != 0 {
		http.Error(w, http.StatusText(r.status), r.status)
		return
	}
	switch name := strings.TrimPrefix(req.URL.Path, "/charts/"); {
	case name == "index.yaml":
		r.index.SortEntries()
		b, err := yaml.Marshal(r.index)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-yaml")
		_, _ = w.Write(b)
	case r.archives[name] != nil:
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(r.archives[name])
	default:
		http.NotFound(w, req)
	}
}

// Add packages ch and lists it in the index.
func (r *Repo) Add(t testing.TB, ch *chart.Chart) {
	t.Helper()
	data, err := Package(ch)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	file := fmt.Sprintf("%s-%s.tgz", ch.Metadata.Name, ch.Metadata.Version)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.index.MustAdd(ch.Metadata, file, r.URL, "sha256:"+hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	r.archives[file] = data
}

// FailWith makes every request answer code (0: serve again).
func (r *Repo) FailWith(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = code
}

// quietRegistry silences the registry's request log (it logs through
// logrus's standard logger), once per process.
var quietRegistry sync.Once

// Registry is an OCI registry on 127.0.0.1 (plain HTTP).
type Registry struct {
	// Host is host:port; URL is oci://host:port/charts (spec.repo).
	Host, URL string
	server    *httptest.Server
	opts      options
}

// NewRegistry starts an empty in-memory registry, closed when t ends.
func NewRegistry(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	r := &Registry{}
	for _, opt := range opts {
		opt(&r.opts)
	}
	cfg := &configuration.Configuration{Storage: configuration.Storage{"inmemory": configuration.Parameters{}}}
	cfg.HTTP.Secret = "helmrepo-test-secret"
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	quietRegistry.Do(func() { logrus.SetOutput(io.Discard) })
	r.server = httptest.NewServer(r.opts.wrap(app))
	t.Cleanup(func() {
		r.server.Close()
		_ = app.Shutdown()
		cancel()
	})
	r.Host = strings.TrimPrefix(r.server.URL, "http://")
	r.URL = "oci://" + r.Host + "/charts"
	return r
}

// Push packages ch and pushes it as charts/<name>:<version>.
func (r *Registry) Push(t testing.TB, ch *chart.Chart) {
	t.Helper()
	data, err := Package(ch)
	if err != nil {
		t.Fatal(err)
	}
	options := []registry.ClientOption{
		registry.ClientOptPlainHTTP(),
		registry.ClientOptWriter(&bytes.Buffer{}),
		registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "registry.json")),
	}
	if r.opts.username != "" {
		options = append(options, registry.ClientOptBasicAuth(r.opts.username, r.opts.password))
	}
	client, err := registry.NewClient(options...)
	if err != nil {
		t.Fatal(err)
	}
	ref := fmt.Sprintf("%s/charts/%s:%s", r.Host, ch.Metadata.Name, ch.Metadata.Version)
	if _, err := client.Push(data, ref); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}
