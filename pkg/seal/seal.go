// Package seal encrypts a short secret to a public key so that only the
// holder of the matching private key can read it. The hub uses it to hand an
// agent its parent credentials through a ClusterRegistrationRequest, an object
// that every holder of the shared bootstrap token may read: sealed to the key
// the agent generated and put in its request, the credential is useless to
// anyone else who reads it.
//
// The scheme is ECIES-shaped with standard parts only: an ephemeral X25519
// key agreement, HKDF-SHA256 to derive an AES-256-GCM key, and a context
// string bound in as additional data so a sealed value cannot be replayed
// into another request.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

const (
	// version is the first byte of a sealed value, so the format can change.
	version  = 1
	keyLen   = 32 // X25519 public key and AES-256 key
	nonceLen = 12 // GCM standard nonce
	info     = "clusternet seal v1"
)

// GenerateKey returns a new X25519 private key.
func GenerateKey() (*ecdh.PrivateKey, error) {
	return ecdh.X25519().GenerateKey(rand.Reader)
}

// MarshalPublicKey encodes pub as a PEM "PUBLIC KEY" (PKIX) block.
func MarshalPublicKey(pub *ecdh.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKey decodes a PEM "PUBLIC KEY" block holding an X25519 key.
func ParsePublicKey(data []byte) (*ecdh.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New(`not a PEM "PUBLIC KEY" block`)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := key.(*ecdh.PublicKey)
	if !ok || pub.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("a %T key, want X25519", key)
	}
	return pub, nil
}

// MarshalPrivateKey encodes priv as a PEM "PRIVATE KEY" (PKCS #8) block.
func MarshalPrivateKey(priv *ecdh.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey decodes a PEM "PRIVATE KEY" block holding an X25519 key.
func ParsePrivateKey(data []byte) (*ecdh.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New(`not a PEM "PRIVATE KEY" block`)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := key.(*ecdh.PrivateKey)
	if !ok || priv.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("a %T key, want X25519", key)
	}
	return priv, nil
}

// Seal encrypts plaintext to pub. context names what the value is for (the
// request it answers); Open must be given the same.
func Seal(pub *ecdh.PublicKey, plaintext, context []byte) ([]byte, error) {
	eph, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	shared, err := eph.ECDH(pub)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(shared, eph.PublicKey().Bytes(), pub.Bytes())
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+keyLen+nonceLen+len(plaintext)+aead.Overhead())
	out = append(out, version)
	out = append(out, eph.PublicKey().Bytes()...)
	nonce := make([]byte, nonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, context), nil
}

// ErrNotForThisKey is returned by Open when the value was not sealed to the
// given key (or was altered, or the context differs): AES-GCM cannot tell
// these apart, and callers act the same on each.
var ErrNotForThisKey = errors.New("the sealed value was not sealed to this key for this context, or was altered")

// Open decrypts a value Seal made for priv's public key and context.
func Open(priv *ecdh.PrivateKey, sealed, context []byte) ([]byte, error) {
	if len(sealed) < 1+keyLen+nonceLen {
		return nil, fmt.Errorf("sealed value is %d bytes, shorter than the %d of its header", len(sealed), 1+keyLen+nonceLen)
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("sealed value has format version %d, want %d", sealed[0], version)
	}
	ephBytes, rest := sealed[1:1+keyLen], sealed[1+keyLen:]
	eph, err := ecdh.X25519().NewPublicKey(ephBytes)
	if err != nil {
		return nil, err
	}
	shared, err := priv.ECDH(eph)
	if err != nil {
		return nil, ErrNotForThisKey
	}
	aead, err := newAEAD(shared, ephBytes, priv.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, rest[:nonceLen], rest[nonceLen:], context)
	if err != nil {
		return nil, ErrNotForThisKey
	}
	return plain, nil
}

// newAEAD derives the AES-GCM key from the shared secret, salted with both
// public keys so that a key agreement is bound to this pair.
func newAEAD(shared, ephPub, recipientPub []byte) (cipher.AEAD, error) {
	salt := bytes.Join([][]byte{ephPub, recipientPub}, nil)
	key, err := hkdf.Key(sha256.New, shared, salt, info, keyLen)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SamePublicKey reports whether two PEM public keys are the same X25519 key,
// whatever their encoding details.
func SamePublicKey(a, b []byte) bool {
	ka, errA := ParsePublicKey(a)
	kb, errB := ParsePublicKey(b)
	return errA == nil && errB == nil && ka.Equal(kb)
}
