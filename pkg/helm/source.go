// Package helm is Clusternet's Helm logic shared by the hub and the agent:
// finding charts in http(s) chart repositories and OCI registries, and
// installing, upgrading and uninstalling the releases HelmReleases describe
// in a child cluster through Helm's action package.
package helm

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
	"k8s.io/apimachinery/pkg/api/resource"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// Credentials log in to a chart repository or an OCI registry.
type Credentials struct {
	Username, Password string
}

// LookupReason classifies why a chart could not be found or fetched.
type LookupReason string

// The lookup failures.
const (
	// ReasonUnreachable: the repository or registry did not answer.
	ReasonUnreachable LookupReason = "Unreachable"
	// ReasonUnauthorized: it refused the (missing or wrong) credentials.
	ReasonUnauthorized LookupReason = "Unauthorized"
	// ReasonChartNotFound: no chart of that name.
	ReasonChartNotFound LookupReason = "ChartNotFound"
	// ReasonVersionNotFound: the chart exists, the version does not.
	ReasonVersionNotFound LookupReason = "VersionNotFound"
	// ReasonInvalid: the repository answered with something that is not a
	// chart repository or chart.
	ReasonInvalid LookupReason = "Invalid"
	// ReasonRefused: the host is not allowed (--chart-repository-allowed-hosts)
	// or is a link-local/metadata address.
	ReasonRefused LookupReason = "Refused"
	// ReasonTooLarge: an index, chart or OCI blob exceeds its size limit.
	ReasonTooLarge LookupReason = "TooLarge"
)

// LookupError says why a chart or version could not be found or fetched,
// with the fix in its message.
type LookupError struct {
	Reason  LookupReason
	Message string
	Err     error
}

func (e *LookupError) Error() string { return e.Message }

func (e *LookupError) Unwrap() error { return e.Err }

// ReasonOf is err's LookupReason, or "" when err is not a LookupError.
func ReasonOf(err error) LookupReason {
	var le *LookupError
	if errors.As(err, &le) {
		return le.Reason
	}
	return ""
}

// newestShown is how many versions an unknown-version message lists.
const newestShown = 5

// fetchTimeout bounds one request to a repository or registry.
const fetchTimeout = 30 * time.Second

// Source finds charts and their versions and downloads them. Downloaded
// archives are cached in memory by repository, chart, version and
// credentials, so re-applying a release does not fetch the chart again.
//
// Every request goes through one guarded transport (fetch.go): hosts are
// checked against RepositoryOptions' allow-list and the metadata deny at
// each request, redirect and dial, and responses are cut at their limit.
type Source struct {
	opts  RepositoryOptions
	guard *guard

	mu      sync.Mutex
	entries map[string]*list.Element
	lru     *list.List
	max     int
	// bytes is the size of the cached archives; maxBytes bounds it.
	bytes, maxBytes int64
	// registryConfig is a credentials file that does not exist: the OCI
	// client must not read or write the user's helm registry config.
	registryConfig string
}

type cached struct {
	key  string
	data []byte
}

// NewSource returns a Source with the default RepositoryOptions (every
// host but link-local/metadata addresses, default size limits).
func NewSource() *Source {
	s, err := NewRepositoryOptions("").NewSource()
	if err != nil {
		panic(err) // the defaults parse
	}
	return s
}

// NewSource returns a Source bounded by o, caching up to 32 chart archives
// and 8 times --chart-repository-max-chart-size of them.
func (o *RepositoryOptions) NewSource() (*Source, error) {
	if errs := o.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	g, err := o.newGuard()
	if err != nil {
		return nil, err
	}
	return &Source{
		opts:           *o,
		guard:          g,
		entries:        map[string]*list.Element{},
		lru:            list.New(),
		max:            32,
		maxBytes:       8 * o.MaxChartBytes,
		registryConfig: filepath.Join(os.TempDir(), "clusternet-helm-no-registry-config", "config.json"),
	}, nil
}

func (s *Source) transport() http.RoundTripper { return s.guard }

func (s *Source) indexLimit() limit {
	return limit{bytes: s.opts.MaxIndexBytes, what: "chart repository index", flag: FlagMaxIndexSize}
}

func (s *Source) chartLimit() limit {
	return limit{bytes: s.opts.MaxChartBytes, what: "chart archive", flag: FlagMaxChartSize}
}

// boundsError is the LookupError of a refused host or an oversized
// response anywhere in err's chain, or nil.
func boundsError(repository string, err error) error {
	var refused *RefusedError
	if errors.As(err, &refused) {
		return &LookupError{Reason: ReasonRefused, Err: err,
			Message: fmt.Sprintf("chart repository %q is refused: %v", RedactURL(repository), refused)}
	}
	var tooLarge *SizeError
	if errors.As(err, &tooLarge) {
		return &LookupError{Reason: ReasonTooLarge, Err: err,
			Message: fmt.Sprintf("chart repository %q: %v", RedactURL(repository), tooLarge)}
	}
	return nil
}

// IsOCI says whether repository is an oci:// registry reference.
func IsOCI(repository string) bool { return registry.IsOCI(repository) }

// Versions lists opts.Chart's versions in opts.Repository, newest first.
func (s *Source) Versions(ctx context.Context, opts *appsv1alpha1.HelmOptions, creds *Credentials) ([]string, error) {
	if IsOCI(opts.Repository) {
		return s.ociTags(ctx, opts, creds)
	}
	index, err := s.index(ctx, opts.Repository, creds)
	if err != nil {
		return nil, err
	}
	cvs, err := chartVersions(index, opts)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(cvs))
	for _, cv := range cvs {
		out = append(out, cv.Version)
	}
	return out, nil
}

// Resolve is the version of opts.Chart to install: opts.ChartVersion when it
// names one exactly, the newest matching it when it is a constraint (">=1.2"),
// or the newest stable version when it is empty.
func (s *Source) Resolve(ctx context.Context, opts *appsv1alpha1.HelmOptions, creds *Credentials) (string, error) {
	if IsOCI(opts.Repository) {
		tags, err := s.ociTags(ctx, opts, creds)
		if err != nil {
			return "", err
		}
		v, err := registry.GetTagMatchingVersionOrConstraint(tags, opts.ChartVersion)
		if err != nil {
			return "", versionNotFound(opts, tags)
		}
		return v, nil
	}
	index, err := s.index(ctx, opts.Repository, creds)
	if err != nil {
		return "", err
	}
	cv, err := chartVersion(index, opts)
	if err != nil {
		return "", err
	}
	return cv.Version, nil
}

// Load downloads version of opts.Chart (as Resolve returned it) and loads it.
func (s *Source) Load(ctx context.Context, opts *appsv1alpha1.HelmOptions, version string, creds *Credentials) (*chart.Chart, error) {
	key := cacheKey(opts, version, creds)
	if data, ok := s.get(key); ok {
		return loader.LoadArchive(bytes.NewReader(data))
	}
	var data []byte
	var err error
	if IsOCI(opts.Repository) {
		data, err = s.ociPull(ctx, opts, version, creds)
	} else {
		data, err = s.httpPull(ctx, opts, version, creds)
	}
	if err != nil {
		return nil, err
	}
	if n, err := checkDecompressed(data, s.opts.MaxDecompressedChartBytes); err != nil {
		return nil, &LookupError{Reason: ReasonTooLarge, Err: err,
			Message: fmt.Sprintf("chart %q version %q from %q decompresses to more than %d bytes (%s; read %d before stopping): raise --%s of %s if it is legitimately that large",
				opts.Chart, version, RedactURL(opts.Repository), s.opts.MaxDecompressedChartBytes,
				resource.NewQuantity(s.opts.MaxDecompressedChartBytes, resource.BinarySI), n, FlagMaxDecompressedSize, s.guard.component)}
	}
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, &LookupError{Reason: ReasonInvalid, Err: err,
			Message: fmt.Sprintf("chart %q version %q from %q is not a valid chart archive: %v", opts.Chart, version, opts.Repository, err)}
	}
	if ch.Metadata.Name != opts.Chart || ch.Metadata.Version != version {
		return nil, &LookupError{Reason: ReasonInvalid,
			Message: fmt.Sprintf("%q served chart %s-%s when asked for %s-%s: fix the repository's index", opts.Repository, ch.Metadata.Name, ch.Metadata.Version, opts.Chart, version)}
	}
	s.put(key, data)
	return ch, nil
}

func cacheKey(opts *appsv1alpha1.HelmOptions, version string, creds *Credentials) string {
	h := sha256.New()
	for _, part := range []string{opts.Repository, opts.Chart, version, fmt.Sprint(opts.PlainHTTP)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	if creds != nil {
		h.Write([]byte(creds.Username))
		h.Write([]byte{0})
		h.Write([]byte(creds.Password))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Source) get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*cached).data, true
	}
	return nil, false
}

func (s *Source) put(key string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[key]; ok {
		return
	}
	s.entries[key] = s.lru.PushFront(&cached{key: key, data: data})
	s.bytes += int64(len(data))
	for s.lru.Len() > s.max || (s.bytes > s.maxBytes && s.lru.Len() > 1) {
		oldest := s.lru.Back()
		s.lru.Remove(oldest)
		delete(s.entries, oldest.Value.(*cached).key)
		s.bytes -= int64(len(oldest.Value.(*cached).data))
	}
}

// --- http(s) chart repositories ---

// httpGet fetches u, with creds when given, reading at most l.
func (s *Source) httpGet(ctx context.Context, u string, creds *Credentials, l limit) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(withLimit(ctx, l), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	if creds != nil && (creds.Username != "" || creds.Password != "") {
		req.SetBasicAuth(creds.Username, creds.Password)
	}
	resp, err := (&http.Client{Transport: s.transport()}).Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	// The guard's body fails past the limit: memory stays bounded.
	body, err := io.ReadAll(resp.Body)
	return body, resp.StatusCode, err
}

// index downloads and parses repository's index.yaml.
func (s *Source) index(ctx context.Context, repository string, creds *Credentials) (*repo.IndexFile, error) {
	indexURL, err := repo.ResolveReferenceURL(repository, "index.yaml")
	if err != nil {
		return nil, &LookupError{Reason: ReasonInvalid, Err: err,
			Message: fmt.Sprintf("spec.repo %q is not a valid URL: %v", repository, err)}
	}
	body, code, err := s.httpGet(ctx, indexURL, creds, s.indexLimit())
	if bErr := boundsError(repository, err); bErr != nil {
		return nil, bErr
	}
	if err != nil {
		return nil, &LookupError{Reason: ReasonUnreachable, Err: err,
			Message: fmt.Sprintf("chart repository %q cannot be reached: %v: check spec.repo and that the repository is up (it is checked again periodically)", repository, err)}
	}
	if err := statusError(repository, "chart repository", code, creds); err != nil {
		return nil, err
	}
	// helm's repo package parses, validates and sorts the index; it reads
	// from a file.
	dir, err := os.MkdirTemp("", "clusternet-helm-index-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "index.yaml")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		return nil, err
	}
	index, err := repo.LoadIndexFile(path)
	if err != nil {
		return nil, &LookupError{Reason: ReasonInvalid, Err: err,
			Message: fmt.Sprintf("%q is not a chart repository: its index.yaml does not parse: %v: check spec.repo", repository, err)}
	}
	return index, nil
}

func statusError(repository, what string, code int, creds *Credentials) error {
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		fix := "set spec.chartPullSecret to a Secret with username and password keys"
		if creds != nil {
			fix = "check the username and password in spec.chartPullSecret's Secret"
		}
		return &LookupError{Reason: ReasonUnauthorized,
			Message: fmt.Sprintf("%s %q refused the credentials (%d %s): %s", what, repository, code, http.StatusText(code), fix)}
	case code == http.StatusNotFound:
		return &LookupError{Reason: ReasonInvalid,
			Message: fmt.Sprintf("%q is not a chart repository: it has no index.yaml (404 Not Found): check spec.repo", repository)}
	case code < 200 || code > 299:
		return &LookupError{Reason: ReasonUnreachable,
			Message: fmt.Sprintf("%s %q answered %d %s: check spec.repo and that the repository is up (it is checked again periodically)", what, repository, code, http.StatusText(code))}
	}
	return nil
}

func chartVersions(index *repo.IndexFile, opts *appsv1alpha1.HelmOptions) (repo.ChartVersions, error) {
	cvs, ok := index.Entries[opts.Chart]
	if !ok || len(cvs) == 0 {
		names := make([]string, 0, len(index.Entries))
		for name := range index.Entries {
			names = append(names, name)
		}
		sort.Strings(names)
		has := "it has no charts"
		if len(names) > 0 {
			if len(names) > 10 {
				names = append(names[:10], "...")
			}
			has = "it has " + strings.Join(names, ", ")
		}
		return nil, &LookupError{Reason: ReasonChartNotFound,
			Message: fmt.Sprintf("chart %q is not in repository %q (%s): check spec.chart", opts.Chart, opts.Repository, has)}
	}
	return cvs, nil
}

func chartVersion(index *repo.IndexFile, opts *appsv1alpha1.HelmOptions) (*repo.ChartVersion, error) {
	cvs, err := chartVersions(index, opts)
	if err != nil {
		return nil, err
	}
	cv, err := index.Get(opts.Chart, opts.ChartVersion)
	if err != nil {
		versions := make([]string, 0, len(cvs))
		for _, v := range cvs {
			versions = append(versions, v.Version)
		}
		return nil, versionNotFound(opts, versions)
	}
	return cv, nil
}

func versionNotFound(opts *appsv1alpha1.HelmOptions, newestFirst []string) error {
	if len(newestFirst) == 0 {
		return &LookupError{Reason: ReasonChartNotFound,
			Message: fmt.Sprintf("chart %q has no versions in %q: push a version or check spec.chart", opts.Chart, opts.Repository)}
	}
	shown := newestFirst
	if len(shown) > newestShown {
		shown = shown[:newestShown]
	}
	what := fmt.Sprintf("no version %q", opts.ChartVersion)
	if opts.ChartVersion == "" {
		what = "no stable version (only pre-releases)"
	}
	return &LookupError{Reason: ReasonVersionNotFound,
		Message: fmt.Sprintf("chart %q has %s in %q; newest available: %s: set spec.version to one of them",
			opts.Chart, what, opts.Repository, strings.Join(shown, ", "))}
}

func (s *Source) httpPull(ctx context.Context, opts *appsv1alpha1.HelmOptions, version string, creds *Credentials) ([]byte, error) {
	pinned := *opts
	pinned.ChartVersion = version
	index, err := s.index(ctx, opts.Repository, creds)
	if err != nil {
		return nil, err
	}
	cv, err := chartVersion(index, &pinned)
	if err != nil {
		return nil, err
	}
	if len(cv.URLs) == 0 {
		return nil, &LookupError{Reason: ReasonInvalid,
			Message: fmt.Sprintf("chart %q version %q in %q lists no download URL: fix the repository's index", opts.Chart, version, opts.Repository)}
	}
	chartURL, err := repo.ResolveReferenceURL(opts.Repository, cv.URLs[0])
	if err != nil {
		return nil, &LookupError{Reason: ReasonInvalid, Err: err,
			Message: fmt.Sprintf("chart %q version %q in %q has a bad URL %q: %v", opts.Chart, version, opts.Repository, cv.URLs[0], err)}
	}
	// As helm does: credentials go only to the repository's own host.
	if !sameHost(opts.Repository, chartURL) {
		creds = nil
	}
	body, code, err := s.httpGet(ctx, chartURL, creds, s.chartLimit())
	if bErr := boundsError(opts.Repository, err); bErr != nil {
		return nil, bErr
	}
	if err != nil {
		return nil, &LookupError{Reason: ReasonUnreachable, Err: err,
			Message: fmt.Sprintf("chart %q version %q cannot be downloaded from %q: %v: check that the repository is up", opts.Chart, version, chartURL, err)}
	}
	if code == http.StatusNotFound {
		return nil, &LookupError{Reason: ReasonInvalid,
			Message: fmt.Sprintf("chart %q version %q is in %q's index but %q is 404 Not Found: fix the repository", opts.Chart, version, opts.Repository, chartURL)}
	}
	if err := statusError(opts.Repository, "chart repository", code, creds); err != nil {
		return nil, err
	}
	return body, nil
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Host == ub.Host
}

// --- OCI registries ---

// ctxTransport makes the registry client's requests (which carry no
// context) end with ctx.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(req.WithContext(t.ctx))
}

// registryClient talks to opts' registry through the guarded transport
// (helm's client and oras's token fetches use the http.Client given), each
// response read at most l.
func (s *Source) registryClient(ctx context.Context, opts *appsv1alpha1.HelmOptions, creds *Credentials, l limit) (*registry.Client, error) {
	options := []registry.ClientOption{
		registry.ClientOptCredentialsFile(s.registryConfig),
		registry.ClientOptHTTPClient(&http.Client{Transport: ctxTransport{ctx: withLimit(ctx, l), base: s.transport()}, Timeout: fetchTimeout}),
	}
	if opts.PlainHTTP {
		options = append(options, registry.ClientOptPlainHTTP())
	}
	if creds != nil && creds.Username != "" {
		options = append(options, registry.ClientOptBasicAuth(creds.Username, creds.Password))
	}
	return registry.NewClient(options...)
}

// ociRef is the registry reference of opts.Chart: oci://host/path + chart.
func ociRef(opts *appsv1alpha1.HelmOptions) string {
	return strings.TrimSuffix(strings.TrimPrefix(opts.Repository, registry.OCIScheme+"://"), "/") + "/" + opts.Chart
}

func (s *Source) ociTags(ctx context.Context, opts *appsv1alpha1.HelmOptions, creds *Credentials) ([]string, error) {
	client, err := s.registryClient(ctx, opts, creds, s.indexLimit())
	if err != nil {
		return nil, err
	}
	tags, err := client.Tags(ociRef(opts))
	if err != nil {
		return nil, ociError(opts, "", err, creds)
	}
	if len(tags) == 0 {
		return nil, &LookupError{Reason: ReasonChartNotFound,
			Message: fmt.Sprintf("chart %q is not in registry %q (no versions tagged at %s): check spec.chart", opts.Chart, opts.Repository, ociRef(opts))}
	}
	return tags, nil
}

func ociError(opts *appsv1alpha1.HelmOptions, version string, err error, creds *Credentials) error {
	if bErr := boundsError(opts.Repository, err); bErr != nil {
		return bErr
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		// The registry asked for credentials and there are none.
		return statusError(opts.Repository, "registry", http.StatusUnauthorized, creds)
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return statusError(opts.Repository, "registry", resp.StatusCode, creds)
		case http.StatusNotFound:
			if version != "" {
				return &LookupError{Reason: ReasonVersionNotFound, Err: err,
					Message: fmt.Sprintf("chart %q has no version %q in %q: set spec.version to an existing tag", opts.Chart, version, opts.Repository)}
			}
			return &LookupError{Reason: ReasonChartNotFound, Err: err,
				Message: fmt.Sprintf("chart %q is not in registry %q (%s not found): check spec.chart", opts.Chart, opts.Repository, ociRef(opts))}
		}
	}
	fix := "check spec.repo and that the registry is up (it is checked again periodically)"
	if !opts.PlainHTTP && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		fix = "the registry speaks plain HTTP: set spec.plainHTTP: true"
	}
	return &LookupError{Reason: ReasonUnreachable, Err: err,
		Message: fmt.Sprintf("registry %q cannot be reached: %v: %s", opts.Repository, err, fix)}
}

func (s *Source) ociPull(ctx context.Context, opts *appsv1alpha1.HelmOptions, version string, creds *Credentials) ([]byte, error) {
	client, err := s.registryClient(ctx, opts, creds, s.chartLimit())
	if err != nil {
		return nil, err
	}
	// OCI tags cannot hold "+": helm pushes it as "_".
	ref := ociRef(opts) + ":" + strings.ReplaceAll(version, "+", "_")
	res, err := client.Pull(ref, registry.PullOptWithChart(true))
	if err != nil {
		return nil, ociError(opts, version, err, creds)
	}
	return res.Chart.Data, nil
}
