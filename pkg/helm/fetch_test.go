package helm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/test/helmrepo"
)

// fakeDNS answers names from a table; anything else does not exist. No
// test reaches real DNS.
func fakeDNS(names map[string]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		if ip, ok := names[host]; ok {
			return []netip.Addr{netip.MustParseAddr(ip)}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
}

type sourceOption func(*RepositoryOptions)

func allow(hosts ...string) sourceOption {
	return func(o *RepositoryOptions) { o.AllowedHosts = hosts }
}

func dns(names map[string]string) sourceOption {
	return func(o *RepositoryOptions) { o.lookup = fakeDNS(names) }
}

func newTestSource(t *testing.T, opts ...sourceOption) *Source {
	t.Helper()
	o := NewRepositoryOptions("clusternet-hub")
	for _, opt := range opts {
		opt(o)
	}
	s, err := o.NewSource()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func helmOpts(repository, chart, version string) *appsv1alpha1.HelmOptions {
	return &appsv1alpha1.HelmOptions{Repository: repository, Chart: chart, ChartVersion: version, TargetNamespace: "demo",
		PlainHTTP: strings.HasPrefix(repository, "oci://")}
}

// hostPort is u's host:port.
func hostPort(t *testing.T, raw string) (string, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), u.Port()
}

func wantLookupError(t *testing.T, err error, reason LookupReason, message string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s: %s", reason, message)
	}
	if got := ReasonOf(err); got != reason {
		t.Errorf("reason %q, want %q (%v)", got, reason, err)
	}
	if diff := cmp.Diff(message, err.Error()); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
}

func TestIndexOverTheLimitIsCutWhileReading(t *testing.T) {
	// The server streams an endless index without Content-Length; the hub
	// must stop at the limit, not buffer until memory runs out.
	var written atomic.Int64
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("# padding padding padding padding\n", 1000))
		for {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(server.Close)
	src := newTestSource(t, func(o *RepositoryOptions) { o.MaxIndexBytes = 64 << 10 })
	_, err := src.Resolve(context.Background(), helmOpts(server.URL, "demo", ""), nil)
	wantLookupError(t, err, ReasonTooLarge, fmt.Sprintf(
		`chart repository %q: chart repository index %q is larger than the limit of 65536 bytes (64Ki): raise --chart-repository-max-index-size of clusternet-hub if it is legitimately that large`,
		server.URL, server.URL+"/index.yaml"))
	server.CloseClientConnections()
	// Socket buffers hold a few MiB at most; without the cut the client
	// would read forever and the test would time out.
	if n := written.Load(); n > 32<<20 {
		t.Errorf("the server wrote %d bytes: the client kept reading past the limit", n)
	}
}

func TestSizeLimits(t *testing.T) {
	big := strings.Repeat("x", 4096)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/declared/index.yaml":
			// Content-Length over the limit: refused before reading.
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			_, _ = w.Write([]byte(big))
		case "/charts/index.yaml":
			_, _ = fmt.Fprintf(w, "apiVersion: v1\nentries:\n  demo:\n  - name: demo\n    version: 0.1.0\n    apiVersion: v2\n    urls: [http://user:secret@%s/charts/demo-0.1.0.tgz]\n", r.Host)
		case "/charts/demo-0.1.0.tgz":
			_, _ = w.Write([]byte(big))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(server.Close)
	src := newTestSource(t, func(o *RepositoryOptions) { o.MaxIndexBytes, o.MaxChartBytes = 1024, 1024 })

	t.Run("index with a Content-Length over the limit", func(t *testing.T) {
		_, err := src.Resolve(context.Background(), helmOpts(server.URL+"/declared", "demo", ""), nil)
		wantLookupError(t, err, ReasonTooLarge, fmt.Sprintf(
			`chart repository %q: chart repository index %q is larger than the limit of 1024 bytes (1Ki): raise --chart-repository-max-index-size of clusternet-hub if it is legitimately that large`,
			server.URL+"/declared", server.URL+"/declared/index.yaml"))
	})
	t.Run("chart archive over the limit, URL without credentials", func(t *testing.T) {
		o := helmOpts(server.URL+"/charts", "demo", "0.1.0")
		v, err := src.Resolve(context.Background(), o, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Load(context.Background(), o, v, nil)
		wantLookupError(t, err, ReasonTooLarge, fmt.Sprintf(
			`chart repository %q: chart archive %q is larger than the limit of 1024 bytes (1Ki): raise --chart-repository-max-chart-size of clusternet-hub if it is legitimately that large`,
			server.URL+"/charts", server.URL+"/charts/demo-0.1.0.tgz"))
	})
}

func TestDecompressedChartOverTheLimit(t *testing.T) {
	r := helmrepo.NewRepo(t)
	r.Add(t, helmrepo.DemoChart("demo", "0.1.0"))
	src := newTestSource(t, func(o *RepositoryOptions) { o.MaxDecompressedChartBytes = 256 })
	o := helmOpts(r.URL, "demo", "0.1.0")
	_, err := src.Load(context.Background(), o, "0.1.0", nil)
	if ReasonOf(err) != ReasonTooLarge || !strings.Contains(err.Error(), "decompresses to more than 256 bytes (256") ||
		!strings.HasSuffix(err.Error(), "raise --chart-repository-max-decompressed-chart-size of clusternet-hub if it is legitimately that large") {
		t.Fatalf("got %v, want a TooLarge error naming the decompressed limit and its flag", err)
	}
	// The default limit loads the same chart.
	if _, err := newTestSource(t).Load(context.Background(), o, "0.1.0", nil); err != nil {
		t.Fatal(err)
	}
}

func TestAllowedHosts(t *testing.T) {
	r := helmrepo.NewRepo(t)
	r.Add(t, helmrepo.DemoChart("demo", "0.1.0"))
	_, port := hostPort(t, r.URL)
	named := "http://charts.example.com:" + port + "/charts"
	reg := helmrepo.NewRegistry(t)
	reg.Push(t, helmrepo.DemoChart("demo", "0.1.0"))
	regHost, _ := hostPort(t, "http://"+strings.TrimPrefix(reg.URL, "oci://"))

	// other serves nothing but a redirect to target.
	redirect := func(target string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			http.Redirect(w, req, target+req.URL.Path, http.StatusFound)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	toRepo := redirect(strings.TrimSuffix(r.URL, "/charts"))
	_, redirectPort := hostPort(t, toRepo)

	tests := []struct {
		name        string
		opts        []sourceOption
		repository  string
		wantReason  LookupReason
		wantMessage string
		// loadMessage is Load's refusal when Resolve passes.
		loadMessage string
	}{
		{name: "empty allow-list allows loopback (today's behaviour)", repository: r.URL},
		{name: "exact host:port allowed", opts: []sourceOption{allow("127.0.0.1:" + port)}, repository: r.URL},
		{name: "wildcard allows a subdomain, not the chart URL the index names on another host", opts: []sourceOption{allow("*.example.com"), dns(map[string]string{"charts.example.com": "127.0.0.1"})}, repository: named,
			loadMessage: fmt.Sprintf(`chart repository %q is refused: host "127.0.0.1" is not allowed by --chart-repository-allowed-hosts of clusternet-hub: use an allowed repository, or ask the clusternet-hub admin to add the host to the flag`, named)},
		{name: "CIDR allows the address a name resolves to", opts: []sourceOption{allow("127.0.0.0/8"), dns(map[string]string{"charts.example.com": "127.0.0.1"})}, repository: named},
		{name: "host not on the allow-list", opts: []sourceOption{allow("example.invalid")}, repository: r.URL, wantReason: ReasonRefused,
			wantMessage: fmt.Sprintf(`chart repository %q is refused: host "127.0.0.1" is not allowed by --chart-repository-allowed-hosts of clusternet-hub: use an allowed repository, or ask the clusternet-hub admin to add the host to the flag`, r.URL)},
		{name: "another port of an allowed host", opts: []sourceOption{allow("127.0.0.1:1")}, repository: r.URL, wantReason: ReasonRefused,
			wantMessage: fmt.Sprintf(`chart repository %q is refused: host "127.0.0.1" is not allowed by --chart-repository-allowed-hosts of clusternet-hub: use an allowed repository, or ask the clusternet-hub admin to add the host to the flag`, r.URL)},
		{name: "wildcard does not allow the domain itself's neighbours", opts: []sourceOption{allow("*.example.com"), dns(map[string]string{"charts.example.org": "127.0.0.1"})},
			repository: "http://charts.example.org:" + port + "/charts", wantReason: ReasonRefused,
			wantMessage: fmt.Sprintf(`chart repository "http://charts.example.org:%s/charts" is refused: host "charts.example.org" (127.0.0.1) is not allowed by --chart-repository-allowed-hosts of clusternet-hub: use an allowed repository, or ask the clusternet-hub admin to add the host to the flag`, port)},
		{name: "name resolving outside the allowed CIDR", opts: []sourceOption{allow("10.0.0.0/8"), dns(map[string]string{"charts.example.com": "127.0.0.1"})}, repository: named, wantReason: ReasonRefused,
			wantMessage: fmt.Sprintf(`chart repository %q is refused: host "charts.example.com" (127.0.0.1) is not allowed by --chart-repository-allowed-hosts of clusternet-hub: use an allowed repository, or ask the clusternet-hub admin to add the host to the flag`, named)},
		{name: "redirect to a host not on the allow-list", opts: []sourceOption{allow("127.0.0.1:" + redirectPort)}, repository: toRepo + "/charts", wantReason: ReasonRefused,
			wantMessage: fmt.Sprintf(`chart repository %q is refused: host "127.0.0.1" is not allowed by --chart-repository-allowed-hosts of clusternet-hub: use an allowed repository, or ask the clusternet-hub admin to add the host to the flag`, toRepo+"/charts")},
		{name: "redirect to the metadata address, default options", repository: redirect("http://169.254.169.254") + "/charts", wantReason: ReasonRefused},
		{name: "metadata address denied by default", repository: "http://169.254.169.254/latest", wantReason: ReasonRefused,
			wantMessage: `chart repository "http://169.254.169.254/latest" is refused: host "169.254.169.254" resolves to 169.254.169.254, a link-local/cloud metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254) clusternet-hub never fetches charts from: to allow it, add the address or a CIDR containing it to --chart-repository-allowed-hosts of clusternet-hub`},
		{name: "name resolving to the metadata address", opts: []sourceOption{dns(map[string]string{"metadata.example.com": "169.254.169.254"})},
			repository: "http://metadata.example.com/charts", wantReason: ReasonRefused,
			wantMessage: `chart repository "http://metadata.example.com/charts" is refused: host "metadata.example.com" resolves to 169.254.169.254, a link-local/cloud metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254) clusternet-hub never fetches charts from: to allow it, add the address or a CIDR containing it to --chart-repository-allowed-hosts of clusternet-hub`},
		{name: "a name pattern does not lift the metadata deny", opts: []sourceOption{allow("*.example.com"), dns(map[string]string{"metadata.example.com": "169.254.169.254"})},
			repository: "http://metadata.example.com/charts", wantReason: ReasonRefused,
			wantMessage: `chart repository "http://metadata.example.com/charts" is refused: host "metadata.example.com" resolves to 169.254.169.254, a link-local/cloud metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254) clusternet-hub never fetches charts from: to allow it, add the address or a CIDR containing it to --chart-repository-allowed-hosts of clusternet-hub`},
		{name: "IPv6 metadata address denied by default", repository: "http://[fd00:ec2::254]/charts", wantReason: ReasonRefused,
			wantMessage: `chart repository "http://[fd00:ec2::254]/charts" is refused: host "fd00:ec2::254" resolves to fd00:ec2::254, a link-local/cloud metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254) clusternet-hub never fetches charts from: to allow it, add the address or a CIDR containing it to --chart-repository-allowed-hosts of clusternet-hub`},
		{name: "credentials in the URL are not repeated", opts: []sourceOption{allow("example.invalid")}, repository: "http://bob:hunter2@" + strings.TrimPrefix(r.URL, "http://"), wantReason: ReasonRefused,
			wantMessage: fmt.Sprintf(`chart repository %q is refused: host "127.0.0.1" is not allowed by --chart-repository-allowed-hosts of clusternet-hub: use an allowed repository, or ask the clusternet-hub admin to add the host to the flag`, r.URL)},
		{name: "OCI registry allowed", opts: []sourceOption{allow(regHost)}, repository: reg.URL},
		{name: "OCI registry not on the allow-list", opts: []sourceOption{allow("example.invalid")}, repository: reg.URL, wantReason: ReasonRefused,
			wantMessage: fmt.Sprintf(`chart repository %q is refused: host "127.0.0.1" is not allowed by --chart-repository-allowed-hosts of clusternet-hub: use an allowed repository, or ask the clusternet-hub admin to add the host to the flag`, reg.URL)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newTestSource(t, tc.opts...)
			o := helmOpts(tc.repository, "demo", "0.1.0")
			v, err := src.Resolve(context.Background(), o, nil)
			if tc.wantReason == "" {
				if err != nil {
					t.Fatal(err)
				}
				_, err := src.Load(context.Background(), o, v, nil)
				if tc.loadMessage != "" {
					wantLookupError(t, err, ReasonRefused, tc.loadMessage)
				} else if err != nil {
					t.Fatal(err)
				}
				return
			}
			if tc.wantMessage == "" {
				if ReasonOf(err) != tc.wantReason || !strings.Contains(err.Error(), `host "169.254.169.254" resolves to 169.254.169.254, a link-local/cloud metadata address`) {
					t.Fatalf("got %v, want a %s error naming the metadata address", err, tc.wantReason)
				}
				return
			}
			wantLookupError(t, err, tc.wantReason, tc.wantMessage)
		})
	}
}

func TestOCIOverTheLimit(t *testing.T) {
	reg := helmrepo.NewRegistry(t)
	reg.Push(t, helmrepo.DemoChart("demo", "0.1.0"))
	src := newTestSource(t, func(o *RepositoryOptions) { o.MaxChartBytes = 128 })
	_, err := src.Load(context.Background(), helmOpts(reg.URL, "demo", "0.1.0"), "0.1.0", nil)
	var size *SizeError
	if ReasonOf(err) != ReasonTooLarge || !errors.As(err, &size) || size.Flag != FlagMaxChartSize || size.Limit != 128 {
		t.Fatalf("got %v, want a TooLarge error with the chart size limit", err)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		host    string
		port    string
		addrs   []string
		want    string // "" allowed; else the refusal
	}{
		{name: "no rules, public address", host: "charts.example.com", port: "443", addrs: []string{"203.0.113.7"}},
		{name: "no rules, loopback", host: "127.0.0.1", port: "80", addrs: []string{"127.0.0.1"}},
		{name: "no rules, link-local", host: "169.254.10.1", port: "80", addrs: []string{"169.254.10.1"}, want: "metadata"},
		{name: "no rules, IPv6 link-local", host: "fe80::1", port: "80", addrs: []string{"fe80::1"}, want: "metadata"},
		{name: "no rules, IPv4-mapped metadata", host: "::ffff:169.254.169.254", port: "80", addrs: []string{"::ffff:169.254.169.254"}, want: "metadata"},
		{name: "metadata allowed by an explicit CIDR", allowed: []string{"169.254.0.0/16"}, host: "169.254.169.254", port: "80", addrs: []string{"169.254.169.254"}},
		{name: "metadata allowed by an explicit address", allowed: []string{"169.254.169.254"}, host: "169.254.169.254", port: "80", addrs: []string{"169.254.169.254"}},
		{name: "one of two addresses denied", host: "charts.example.com", port: "80", addrs: []string{"203.0.113.7", "169.254.169.254"}, want: "metadata"},
		{name: "wildcard does not match the bare domain", allowed: []string{"*.example.com"}, host: "example.com", port: "443", addrs: []string{"203.0.113.7"}, want: "not allowed"},
		{name: "wildcard matches deeper subdomains", allowed: []string{"*.example.com"}, host: "a.b.example.com", port: "443", addrs: []string{"203.0.113.7"}},
		{name: "host match is case-insensitive", allowed: []string{"Charts.Example.com"}, host: "CHARTS.example.com", port: "443"},
		{name: "proxied name, CIDR rule only", allowed: []string{"10.0.0.0/8"}, host: "charts.example.com", port: "443", want: "not allowed"},
		{name: "IPv6 host:port", allowed: []string{"[::1]:5000"}, host: "::1", port: "5000", addrs: []string{"::1"}},
		{name: "IPv6 host:port, other port", allowed: []string{"[::1]:5000"}, host: "::1", port: "5001", addrs: []string{"::1"}, want: "not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := (&RepositoryOptions{AllowedHosts: tc.allowed, Component: "clusternet-hub", MaxChartBytes: 1}).newGuard()
			if err != nil {
				t.Fatal(err)
			}
			var addrs []netip.Addr
			for _, a := range tc.addrs {
				addrs = append(addrs, netip.MustParseAddr(a))
			}
			err = g.check(tc.host, tc.port, addrs)
			var refused *RefusedError
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "":
			case !errors.As(err, &refused):
				t.Fatalf("got %v, want a refusal", err)
			case refused.Metadata != (tc.want == "metadata"):
				t.Fatalf("got %v, want a %s refusal", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	o := NewRepositoryOptions("clusternet-hub")
	o.AllowedHosts = []string{"charts.example.com", "*.example.org:443", "10.0.0.0/8", "fd00::/8", "127.0.0.1:8080", "bad_host!", "10.0.0.0/99"}
	o.MaxChartBytes = 0
	var got []string
	for _, err := range o.Validate() {
		got = append(got, err.Error())
	}
	want := []string{
		"--chart-repository-allowed-hosts entry \"bad_host!\": not a host name: write host, host:port, *.example.com or a CIDR such as 10.0.0.0/8\n" +
			"--chart-repository-allowed-hosts entry \"10.0.0.0/99\": not a CIDR: write host, host:port, *.example.com or a CIDR such as 10.0.0.0/8",
		"--chart-repository-max-chart-size 0: must be positive, e.g. 16Mi",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Validate (-want +got):\n%s", diff)
	}
}

func TestByteSizeFlag(t *testing.T) {
	var n int64 = 16 << 20
	b := byteSize{&n}
	if b.String() != "16Mi" {
		t.Errorf("String() = %q, want 16Mi", b.String())
	}
	for in, want := range map[string]int64{"32Mi": 32 << 20, "1G": 1e9, "1024": 1024} {
		if err := b.Set(in); err != nil || n != want {
			t.Errorf("Set(%q): %d, %v; want %d", in, n, err, want)
		}
	}
	for _, in := range []string{"-1", "0", "lots"} {
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) accepted", in)
		}
	}
}
