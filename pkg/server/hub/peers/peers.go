// Package peers lets any hub replica answer a proxy request for any
// cluster: each replica records the tunnels it holds in Leases of the hub's
// namespace (leases.go), and a replica without a cluster's tunnel forwards the
// request to the holder over mutually authenticated TLS with a hub-internal
// CA, carrying the caller's identity in the aggregator's X-Remote-* headers
// (forward.go). The holder trusts those headers only on a connection whose
// client certificate that CA signed for PeerName (Authenticator), and
// authorizes the request again as that caller, as for any other request.
package peers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/clusternet/clusternet/pkg/server/hub/certs"
)

// PeerName is the common name of every replica's peer client certificate
// and the TLS server name replicas dial each other by (an SNI certificate
// beside the serving one).
const PeerName = "clusternet-hub-peer"

// DefaultCASecret holds the hub-internal CA when no files are given.
const DefaultCASecret = "clusternet-hub-peer-ca"

// Lifetimes of the peer CA the hub makes, and of each replica's peer
// certificate (issued at start).
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 365 * 24 * time.Hour
)

// Identity headers, as the aggregator sends them (k8s.io/client-go/transport
// SetAuthProxyHeaders writes them).
var (
	nameHeaders  = []string{"X-Remote-User"}
	uidHeaders   = []string{"X-Remote-Uid"}
	groupHeaders = []string{"X-Remote-Group"}
	extraPrefix  = []string{"X-Remote-Extra-"}
)

// TLS is one replica's side of the peer trust: the CA, its own certificate
// (client and server), and what the API server needs to use them.
type TLS struct {
	ca   *x509.CertPool
	cert tls.Certificate
	// caPEM and certPEM/keyPEM feed the API server.
	caPEM, certPEM, keyPEM []byte
}

// LoadCA reads the peer CA from files (both set) or from Secret
// namespace/DefaultCASecret, which the first replica to start creates.
func LoadCA(ctx context.Context, secrets typedcorev1.SecretsGetter, namespace, certFile, keyFile string) (*certs.CA, error) {
	if certFile != "" || keyFile != "" {
		certPEM, err := os.ReadFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("--peer-ca-cert-file: %w", err)
		}
		keyPEM, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("--peer-ca-key-file: %w", err)
		}
		return certs.ParseCA(certPEM, keyPEM)
	}
	s, err := certs.EnsureSecret(ctx, secrets, namespace, DefaultCASecret, func() (map[string][]byte, error) {
		ca, err := certs.NewCA("clusternet-hub-peer-ca", time.Now(), caLifetime)
		if err != nil {
			return nil, err
		}
		return map[string][]byte{certs.KeyCACert: ca.CertPEM, certs.KeyCAKey: ca.KeyPEM}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("peer CA: %w", err)
	}
	ca, err := certs.ParseCA(s.Data[certs.KeyCACert], s.Data[certs.KeyCAKey])
	if err != nil {
		return nil, fmt.Errorf("peer CA in Secret %s/%s: %w", namespace, DefaultCASecret, err)
	}
	return ca, nil
}

// NewTLS issues this replica's peer certificate from ca.
func NewTLS(ca *certs.CA) (*TLS, error) {
	certPEM, keyPEM, err := ca.Issue(certs.Leaf{CommonName: PeerName, DNSNames: []string{PeerName}, Server: true, Client: true}, time.Now(), leafLifetime)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &TLS{ca: pool, cert: pair, caPEM: ca.CertPEM, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// ClientConfig is how a replica dials another: it verifies the peer's
// certificate for PeerName against the peer CA and always presents its own
// (whatever CAs the server lists as acceptable: the API server lists its
// other client CAs too).
func (t *TLS) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    t.ca,
		ServerName: PeerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &t.cert, nil
		},
	}
}

// ServingCert is the certificate this replica answers peers with (for
// server name PeerName, beside the serving certificate).
func (t *TLS) ServingCert() (dynamiccertificates.SNICertKeyContentProvider, error) {
	return dynamiccertificates.NewStaticSNICertKeyContent("clusternet-hub-peer", t.certPEM, t.keyPEM, PeerName)
}

// ClientCA is the peer CA, added to the API server's client CAs so that it
// asks every client for a certificate.
func (t *TLS) ClientCA() (dynamiccertificates.CAContentProvider, error) {
	return dynamiccertificates.NewStaticCAContent("clusternet-hub-peer-ca", t.caPEM)
}

// Authenticator trusts X-Remote-User/-Uid/-Group/-Extra-* only on requests
// whose client certificate the peer CA signed for PeerName. A client
// without one, or with one another CA signed, is not authenticated by it
// (the API server's other authenticators decide who it is; the headers
// mean nothing to them).
func (t *TLS) Authenticator() authenticator.Request {
	verify := func() (x509.VerifyOptions, bool) {
		return x509.VerifyOptions{Roots: t.ca, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, true
	}
	return headerrequest.NewDynamicVerifyOptionsSecure(verify,
		headerrequest.StaticStringSlice{PeerName},
		headerrequest.StaticStringSlice(nameHeaders), headerrequest.StaticStringSlice(uidHeaders),
		headerrequest.StaticStringSlice(groupHeaders), headerrequest.StaticStringSlice(extraPrefix))
}
