package seal

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"testing"
)

func mustKey(t testing.TB) *ecdh.PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	owner, other := mustKey(t), mustKey(t)
	secret := []byte("eyJhbGciOi.a-service-account-token")
	ctx := []byte("clusternet-1234")
	sealed, err := Seal(owner.PublicKey(), secret, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed value contains the plaintext")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name    string
		key     *ecdh.PrivateKey
		sealed  []byte
		context []byte
		wantErr error
	}{
		{name: "owner opens it", key: owner, sealed: sealed, context: ctx},
		{name: "another key cannot", key: other, sealed: sealed, context: ctx, wantErr: ErrNotForThisKey},
		{name: "another context cannot", key: owner, sealed: sealed, context: []byte("clusternet-5678"), wantErr: ErrNotForThisKey},
		{name: "a changed byte is detected", key: owner, sealed: tampered, context: ctx, wantErr: ErrNotForThisKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Open(tc.key, tc.sealed, tc.context)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && !bytes.Equal(got, secret) {
				t.Errorf("Open = %q, want %q", got, secret)
			}
		})
	}
}

func TestOpenRejectsMalformed(t *testing.T) {
	key := mustKey(t)
	for _, tc := range []struct {
		name, sealed, want string
	}{
		{name: "empty", sealed: "", want: "sealed value is 0 bytes, shorter than the 45 of its header"},
		{name: "unknown version", sealed: "\x02" + string(make([]byte, 60)), want: "sealed value has format version 2, want 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(key, []byte(tc.sealed), nil)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Open error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestKeyEncodingRoundTrips(t *testing.T) {
	key := mustKey(t)
	pubPEM, err := MarshalPublicKey(key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(key.PublicKey()) || !priv.Equal(key) {
		t.Error("keys changed through PEM")
	}
	if !SamePublicKey(pubPEM, pubPEM) {
		t.Error("SamePublicKey(k, k) = false")
	}
	other, _ := MarshalPublicKey(mustKey(t).PublicKey())
	if SamePublicKey(pubPEM, other) {
		t.Error("SamePublicKey of two keys = true")
	}
	for _, bad := range []string{"", "not pem", string(privPEM)} {
		if _, err := ParsePublicKey([]byte(bad)); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted it", bad)
		}
	}
}

// FuzzOpen: whatever bytes a less trusted party writes where a sealed value
// belongs, Open returns an error and never panics.
func FuzzOpen(f *testing.F) {
	key, err := GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	good, err := Seal(key.PublicKey(), []byte("token"), []byte("ctx"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, sealed []byte) {
		got, err := Open(key, sealed, []byte("ctx"))
		if err == nil && !bytes.Equal(got, []byte("token")) {
			t.Fatalf("Open accepted a forged value: %q", got)
		}
	})
}
