package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/endpoints/responsewriter"
	"k8s.io/component-base/metrics"
)

const proxySubsystem = "proxy"

var (
	proxyRequests = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      namespace,
		Subsystem:      proxySubsystem,
		Name:           "requests_total",
		Help:           "Requests the hub proxied into a child cluster through its tunnel (sockets/<id>/proxy), by cluster, verb and HTTP status code.",
		StabilityLevel: alpha,
	}, []string{"cluster", "verb", "code"})
	proxyRequestDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: namespace,
		Subsystem: proxySubsystem,
		Name:      "request_duration_seconds",
		Help: "How long the hub took to proxy a request into a child cluster, until its response ended, by cluster and verb. " +
			"Watches and upgraded connections (exec, attach, port-forward) are left out: they last as long as their user wants.",
		Buckets:        []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		StabilityLevel: alpha,
	}, []string{"cluster", "verb"})
)

// Verbs of proxied requests besides the Kubernetes API verbs.
const (
	// VerbConnect is an upgraded connection: exec, attach, port-forward, a websocket.
	VerbConnect = "connect"
	verbOther   = "other"
)

// requestInfos reads the Kubernetes verb (get, list, watch, create, ...)
// from a path into a child's apiserver.
var requestInfos = &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}

// methodVerbs are the verbs of requests that are not to a Kubernetes
// resource: their method, from a fixed set, so a label value never comes
// from the caller.
var methodVerbs = map[string]string{
	http.MethodGet: "get", http.MethodHead: "head", http.MethodPost: "post", http.MethodPut: "put",
	http.MethodPatch: "patch", http.MethodDelete: "delete", http.MethodOptions: "options",
}

// ProxyVerb is the verb label of a proxied request: VerbConnect for an
// upgrade, the Kubernetes verb for a resource request of a child's
// apiserver, else the lowercased HTTP method. target is what follows
// sockets/<id>/proxy/ (direct/<path>, or http(s)/<host>/<path>).
func ProxyVerb(target string, req *http.Request) string {
	if httpguts.HeaderValuesContainsToken(req.Header["Connection"], "Upgrade") {
		return VerbConnect
	}
	if mode, path, _ := strings.Cut(strings.TrimPrefix(target, "/"), "/"); mode == "direct" {
		r := &http.Request{Method: req.Method, URL: &url.URL{Path: "/" + path, RawQuery: req.URL.RawQuery}}
		if info, err := requestInfos.NewRequestInfo(r); err == nil && info.IsResourceRequest && info.Verb != "" {
			return info.Verb
		}
	}
	if v, ok := methodVerbs[req.Method]; ok {
		return v
	}
	return verbOther
}

// ProxyRequest starts recording one request proxied into cluster; target is
// what follows sockets/<id>/proxy/. The handler writes its response to the
// returned writer and calls done when it returns:
//
//	w, done := metrics.ProxyRequest(id, target, w, req)
//	defer done()
//
// The status code is the one the caller got: for an upgrade, the one the
// child answered on the hijacked connection.
func ProxyRequest(cluster, target string, w http.ResponseWriter, req *http.Request) (_ http.ResponseWriter, done func()) {
	start := time.Now()
	verb := ProxyVerb(target, req)
	rec := &statusRecorder{ResponseWriter: w}
	return responsewriter.WrapForHTTP1Or2(rec), func() {
		code := int(rec.code.Load())
		if code == 0 {
			code = http.StatusOK // nothing written: net/http answers 200
		}
		proxyRequests.WithLabelValues(cluster, verb, strconv.Itoa(code)).Inc()
		if verb != "watch" && verb != VerbConnect {
			proxyRequestDuration.WithLabelValues(cluster, verb).Observe(time.Since(start).Seconds())
		}
	}
}

// statusRecorder remembers the first final status code of a response.
type statusRecorder struct {
	http.ResponseWriter
	code atomic.Int32
}

var (
	_ responsewriter.UserProvidedDecorator = &statusRecorder{}
	_ http.Hijacker                        = &statusRecorder{}
	_ http.Flusher                         = &statusRecorder{}
)

func (r *statusRecorder) record(code int) {
	if code >= http.StatusOK || code == http.StatusSwitchingProtocols {
		r.code.CompareAndSwap(0, int32(code))
	}
}

func (r *statusRecorder) WriteHeader(code int) {
	r.record(code)
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.record(http.StatusOK)
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush sends what is buffered (a watch event): the status, if none was
// written yet, is 200.
func (r *statusRecorder) Flush() {
	r.record(http.StatusOK)
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands over the connection, reading the status code from the
// response the proxy then writes on it itself.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the response writer cannot be hijacked")
	}
	conn, rw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &statusSniffer{Conn: conn, rec: r}, rw, nil
}

// statusSniffer reads the status line of the first write on a hijacked
// connection (HTTP/1.1 101 Switching Protocols, or the child's refusal).
type statusSniffer struct {
	net.Conn
	rec  *statusRecorder
	once sync.Once
}

func (c *statusSniffer) Write(b []byte) (int, error) {
	c.once.Do(func() {
		if code, ok := statusLine(b); ok {
			c.rec.record(code)
		}
	})
	return c.Conn.Write(b)
}

// statusLine reads the code of an HTTP/1.x status line at the start of b.
func statusLine(b []byte) (int, bool) {
	if !bytes.HasPrefix(b, []byte("HTTP/")) {
		return 0, false
	}
	_, rest, ok := bytes.Cut(b, []byte(" "))
	if !ok || len(rest) < 3 {
		return 0, false
	}
	code, err := strconv.Atoi(string(rest[:3]))
	if err != nil || code < 100 || code > 599 {
		return 0, false
	}
	return code, true
}
