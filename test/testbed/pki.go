package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"time"

	"github.com/clusternet/clusternet/pkg/server/hub/certs"
)

// CA signs the testbed's certificates with the hub's own CA code, so that
// the control planes run on the kind of certificates the product makes.
type CA struct{ *certs.CA }

// certLifetime outlasts any test run.
const certLifetime = 24 * time.Hour

// NewCA makes a self-signed CA.
func NewCA(commonName string) (*CA, error) {
	ca, err := certs.NewCA(commonName, time.Now(), certLifetime)
	if err != nil {
		return nil, err
	}
	return &CA{ca}, nil
}

// CertSpec describes a leaf certificate.
type CertSpec = certs.Leaf

// KeyPair is a PEM certificate and its PEM private key.
type KeyPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// Issue signs a leaf certificate for spec.
func (ca *CA) Issue(spec CertSpec) (*KeyPair, error) {
	certPEM, keyPEM, err := ca.CA.Issue(spec, time.Now(), certLifetime)
	if err != nil {
		return nil, err
	}
	return &KeyPair{CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// WriteFiles writes the pair as <dir>/<name>.crt and <dir>/<name>.key and
// returns the two paths.
func (kp *KeyPair) WriteFiles(dir, name string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, kp.CertPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, kp.KeyPEM, 0o600)
}

// newSigningKeyPair makes the key pair the apiserver signs ServiceAccount tokens with.
func newSigningKeyPair(dir string) (pubFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", "", err
	}
	pubFile, keyFile = filepath.Join(dir, "sa.pub"), filepath.Join(dir, "sa.key")
	if err := os.WriteFile(pubFile, pemBlock("PUBLIC KEY", pubDER), 0o600); err != nil {
		return "", "", err
	}
	return pubFile, keyFile, os.WriteFile(keyFile, pemBlock("PRIVATE KEY", keyDER), 0o600)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
