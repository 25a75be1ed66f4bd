package helm

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The flags of RepositoryOptions, named in the errors they lift.
const (
	FlagAllowedHosts           = "chart-repository-allowed-hosts"
	FlagMaxIndexSize           = "chart-repository-max-index-size"
	FlagMaxChartSize           = "chart-repository-max-chart-size"
	FlagMaxDecompressedSize    = "chart-repository-max-decompressed-chart-size"
	defaultMaxIndexBytes       = 32 << 20
	defaultMaxChartBytes       = 16 << 20
	defaultMaxDecompressedSize = 64 << 20
)

// metadataRanges are never fetched from unless an IP or CIDR entry of the
// allow-list covers them: link-local addresses are where clouds serve
// instance metadata and credentials (169.254.169.254, AWS's fd00:ec2::254),
// and no chart repository has a reason to live there. Whoever may write a
// HelmChart must not turn the hub into a reader of the node's credentials.
var metadataRanges = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
}

// RepositoryOptions bound what the hub (HelmCharts, pushed HelmReleases) and
// each agent (pulled HelmReleases) fetch from chart repositories and OCI
// registries: which hosts, and how many bytes. Whoever may write a HelmChart
// names the URL, so without them the hub fetches any address it can reach,
// any number of bytes.
type RepositoryOptions struct {
	// Component names the binary in errors ("clusternet-hub").
	Component string
	// AllowedHosts are host, host:port, *.domain and CIDR entries; empty
	// allows every host but the link-local/metadata ranges.
	AllowedHosts []string
	// MaxIndexBytes bounds a repository's index.yaml and an OCI tag list.
	MaxIndexBytes int64
	// MaxChartBytes bounds a chart archive and each OCI manifest and blob.
	MaxChartBytes int64
	// MaxDecompressedChartBytes bounds a chart archive's content once
	// decompressed (a small gzip can inflate to gigabytes).
	MaxDecompressedChartBytes int64

	// lookup resolves host names; tests replace it (no real DNS).
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// NewRepositoryOptions returns the defaults for component.
func NewRepositoryOptions(component string) *RepositoryOptions {
	return &RepositoryOptions{
		Component:                 component,
		MaxIndexBytes:             defaultMaxIndexBytes,
		MaxChartBytes:             defaultMaxChartBytes,
		MaxDecompressedChartBytes: defaultMaxDecompressedSize,
	}
}

// AddFlags adds the --chart-repository-* flags to fs.
func (o *RepositoryOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.AllowedHosts, FlagAllowedHosts, o.AllowedHosts,
		"Chart repositories and OCI registries that may be fetched from: host, host:port, *.example.com (any subdomain) or a CIDR (for IP addresses, also those a name resolves to). Checked for every request, redirect and resolved address. Empty allows every host except link-local/cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254), which only an IP or CIDR entry covering them allows.")
	fs.Var(byteSize{&o.MaxIndexBytes}, FlagMaxIndexSize, "Largest index.yaml (or OCI tag list) read from a chart repository, e.g. 32Mi.")
	fs.Var(byteSize{&o.MaxChartBytes}, FlagMaxChartSize, "Largest chart archive (and OCI manifest or blob) read from a chart repository, e.g. 16Mi.")
	fs.Var(byteSize{&o.MaxDecompressedChartBytes}, FlagMaxDecompressedSize, "Largest content of a chart archive once decompressed, e.g. 64Mi.")
}

// Validate checks the flags.
func (o *RepositoryOptions) Validate() []error {
	var errs []error
	if _, err := parseAllowedHosts(o.AllowedHosts); err != nil {
		errs = append(errs, err)
	}
	for _, size := range []struct {
		flag  string
		value int64
	}{{FlagMaxIndexSize, o.MaxIndexBytes}, {FlagMaxChartSize, o.MaxChartBytes}, {FlagMaxDecompressedSize, o.MaxDecompressedChartBytes}} {
		if size.value <= 0 {
			errs = append(errs, fmt.Errorf("--%s %d: must be positive, e.g. 16Mi", size.flag, size.value))
		}
	}
	return errs
}

// byteSize is a flag of a byte count written as a quantity (16Mi, 1G, 1024).
type byteSize struct{ p *int64 }

func (b byteSize) String() string {
	if b.p == nil {
		return ""
	}
	return resource.NewQuantity(*b.p, resource.BinarySI).String()
}

func (b byteSize) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("%q is not a size: write it as 16Mi, 1Gi or a number of bytes", s)
	}
	if q.Sign() <= 0 {
		return fmt.Errorf("%q: a size must be positive", s)
	}
	*b.p = q.Value()
	return nil
}

func (byteSize) Type() string { return "size" }

// hostRule is one entry of the allow-list.
type hostRule struct {
	// prefix is set for IP and CIDR entries.
	prefix netip.Prefix
	// name is a host name; with wildcard, the suffix ".example.com".
	name     string
	wildcard bool
	// port, when set, is the only port the entry allows.
	port string
}

func (r hostRule) allowsName(host, port string) bool {
	if r.prefix.IsValid() || (r.port != "" && r.port != port) {
		return false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if r.wildcard {
		return strings.HasSuffix(host, r.name) && len(host) > len(r.name)
	}
	return host == r.name
}

func (r hostRule) allowsAddr(ip netip.Addr, port string) bool {
	return r.prefix.IsValid() && (r.port == "" || r.port == port) && r.prefix.Contains(ip.Unmap())
}

func parseAllowedHosts(entries []string) ([]hostRule, error) {
	var rules []hostRule
	var errs []error
	for _, raw := range entries {
		e := strings.ToLower(strings.TrimSpace(raw))
		if e == "" {
			continue
		}
		r, err := parseHostRule(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s entry %q: %w: write host, host:port, *.example.com or a CIDR such as 10.0.0.0/8", FlagAllowedHosts, raw, err))
			continue
		}
		rules = append(rules, r)
	}
	return rules, errors.Join(errs...)
}

func parseHostRule(e string) (hostRule, error) {
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return hostRule{}, errors.New("not a CIDR")
		}
		return hostRule{prefix: p.Masked()}, nil
	}
	if ip, err := netip.ParseAddr(e); err == nil {
		return hostRule{prefix: netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())}, nil
	}
	host, port := e, ""
	if h, p, err := net.SplitHostPort(e); err == nil {
		host, port = h, p
		if n, err := netip.ParseAddr(host); err == nil {
			return hostRule{prefix: netip.PrefixFrom(n.Unmap(), n.Unmap().BitLen()), port: port}, nil
		}
	}
	r := hostRule{port: port}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		r.wildcard, host = true, rest
	}
	if msgs := validation.IsDNS1123Subdomain(host); len(msgs) > 0 {
		return hostRule{}, errors.New("not a host name")
	}
	r.name = host
	if r.wildcard {
		r.name = "." + host
	}
	return r, nil
}

// RefusedError is a fetch the allow-list or the metadata deny refused.
type RefusedError struct {
	// Host is the host the request named; Addr the address it resolved to
	// (empty when the name itself was refused).
	Host, Addr string
	// Metadata is true when Addr is in the link-local/metadata ranges.
	Metadata  bool
	Component string
}

func (e *RefusedError) Error() string {
	if e.Metadata {
		return fmt.Sprintf("host %q resolves to %s, a link-local/cloud metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254) %s never fetches charts from: to allow it, add the address or a CIDR containing it to --%s of %s",
			e.Host, e.Addr, e.Component, FlagAllowedHosts, e.Component)
	}
	if e.Addr != "" {
		return fmt.Sprintf("host %q (%s) is not allowed by --%s of %s: use an allowed repository, or ask the %s admin to add the host to the flag",
			e.Host, e.Addr, FlagAllowedHosts, e.Component, e.Component)
	}
	return fmt.Sprintf("host %q is not allowed by --%s of %s: use an allowed repository, or ask the %s admin to add the host to the flag",
		e.Host, FlagAllowedHosts, e.Component, e.Component)
}

// SizeError is a response larger than its limit; reading stopped there.
type SizeError struct {
	URL       string
	What      string
	Limit     int64
	Flag      string
	Component string
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("%s %q is larger than the limit of %s bytes (%s): raise --%s of %s if it is legitimately that large",
		e.What, e.URL, fmt.Sprint(e.Limit), resource.NewQuantity(e.Limit, resource.BinarySI).String(), e.Flag, e.Component)
}

// redactURL drops the user information (credentials) of u.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

// RedactURL drops credentials from a URL written by a user, for messages.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return redactURL(u)
}

// limit is what one request may read.
type limit struct {
	bytes int64
	what  string
	flag  string
}

type limitKey struct{}

func withLimit(ctx context.Context, l limit) context.Context {
	return context.WithValue(ctx, limitKey{}, l)
}

type proxyKey struct{}

// guard enforces RepositoryOptions on every request of a transport.
type guard struct {
	rules     []hostRule
	component string
	lookup    func(ctx context.Context, host string) ([]netip.Addr, error)
	dialer    *net.Dialer
	proxy     func(*http.Request) (*url.URL, error)
	base      *http.Transport
	// fallback is the limit of a request that set none.
	fallback limit
}

func (o *RepositoryOptions) newGuard() (*guard, error) {
	rules, err := parseAllowedHosts(o.AllowedHosts)
	if err != nil {
		return nil, err
	}
	component := o.Component
	if component == "" {
		component = "clusternet"
	}
	g := &guard{
		rules:     rules,
		component: component,
		lookup:    o.lookup,
		dialer:    &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		proxy:     http.ProxyFromEnvironment,
		fallback:  limit{bytes: o.MaxChartBytes, what: "response", flag: FlagMaxChartSize},
	}
	if g.lookup == nil {
		g.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	g.base = http.DefaultTransport.(*http.Transport).Clone()
	g.base.Proxy = g.proxy
	g.base.DialContext = g.dialContext
	return g, nil
}

// check says whether host:port, resolving to addrs, may be fetched from.
// addrs is empty when the name is not resolved here (a proxy resolves it).
func (g *guard) check(host, port string, addrs []netip.Addr) error {
	for _, ip := range addrs {
		ip = ip.Unmap()
		if !inMetadataRanges(ip) {
			continue
		}
		if !g.allowsAddr(ip, port) {
			return &RefusedError{Host: host, Addr: ip.String(), Metadata: true, Component: g.component}
		}
	}
	if len(g.rules) == 0 {
		return nil
	}
	for _, r := range g.rules {
		if r.allowsName(host, port) {
			return nil
		}
	}
	if len(addrs) == 0 {
		return &RefusedError{Host: host, Component: g.component}
	}
	for _, ip := range addrs {
		if !g.allowsAddr(ip.Unmap(), port) {
			addr := ""
			if ip.String() != host {
				addr = ip.String()
			}
			return &RefusedError{Host: host, Addr: addr, Component: g.component}
		}
	}
	return nil
}

func (g *guard) allowsAddr(ip netip.Addr, port string) bool {
	for _, r := range g.rules {
		if r.allowsAddr(ip, port) {
			return true
		}
	}
	return false
}

func inMetadataRanges(ip netip.Addr) bool {
	for _, p := range metadataRanges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// RoundTrip checks the request's host when a proxy will resolve it (the
// dial then reaches the proxy, not the host), and bounds the response.
// Redirects come back through here, so every hop is checked.
func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	proxyURL, err := g.proxy(req)
	if err != nil {
		return nil, err
	}
	if proxyURL != nil {
		host, port := req.URL.Hostname(), portOf(req.URL)
		var addrs []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{ip}
		}
		if err := g.check(host, port, addrs); err != nil {
			return nil, err
		}
		ctx = context.WithValue(ctx, proxyKey{}, canonicalAddr(proxyURL))
		req = req.WithContext(ctx)
	}
	l, ok := ctx.Value(limitKey{}).(limit)
	if !ok {
		l = g.fallback
	}
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	sizeErr := &SizeError{URL: redactURL(req.URL), What: l.what, Limit: l.bytes, Flag: l.flag, Component: g.component}
	if resp.ContentLength > l.bytes {
		_ = resp.Body.Close()
		return nil, sizeErr
	}
	resp.Body = &limitedBody{rc: resp.Body, left: l.bytes, err: sizeErr}
	return resp, nil
}

// dialContext resolves addr itself, checks every address it resolves to,
// and dials only those it checked: a name cannot resolve to an allowed
// address for the check and to another for the connection.
func (g *guard) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		if addrs, err = g.lookup(ctx, host); err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("host %q has no addresses", host)
		}
	}
	if proxy, _ := ctx.Value(proxyKey{}).(string); proxy == addr {
		// The proxy the admin configured (HTTPS_PROXY): only the
		// metadata deny applies to it; RoundTrip checked the host.
		for _, ip := range addrs {
			if inMetadataRanges(ip.Unmap()) && !g.allowsAddr(ip.Unmap(), port) {
				return nil, &RefusedError{Host: host, Addr: ip.String(), Metadata: true, Component: g.component}
			}
		}
	} else if err := g.check(host, port, addrs); err != nil {
		return nil, err
	}
	var errs []error
	for _, ip := range addrs {
		conn, err := g.dialer.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

func canonicalAddr(u *url.URL) string { return net.JoinHostPort(u.Hostname(), portOf(u)) }

// limitedBody fails a read past its limit instead of truncating silently:
// a cut index or chart must not parse as a smaller valid one.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	err  error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, b.err
	}
	// Read one byte past the limit to tell "exactly the limit" from "more".
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n + int(b.left), b.err
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// checkDecompressed reads the gzipped archive data through (discarding it),
// failing once its content exceeds max bytes, before Helm's loader holds
// every file in memory. Helm's own loader bounds (100 MiB in all, 5 MiB a
// file, process-wide variables) stay as a backstop.
func checkDecompressed(data []byte, max int64) (int64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return 0, nil // not gzip: the loader says what is wrong with it
	}
	defer func() { _ = zr.Close() }()
	// A corrupt stream is the loader's to report: only the count matters here.
	n, _ := io.Copy(io.Discard, io.LimitReader(zr, max+1))
	if n > max {
		return n, errTooLarge
	}
	return n, nil
}

var errTooLarge = errors.New("too large")
