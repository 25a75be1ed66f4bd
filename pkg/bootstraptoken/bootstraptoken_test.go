package bootstraptoken

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func TestGenerateShape(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		tok, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !tokenPattern.MatchString(tok.String()) {
			t.Fatalf("token %q does not match %s", tok, tokenPattern)
		}
		if seen[tok.ID] {
			t.Fatalf("token id %q came twice in 200 tokens", tok.ID)
		}
		seen[tok.ID] = true
		parsed, err := Parse(tok.String())
		if err != nil {
			t.Fatal(err)
		}
		if parsed != tok {
			t.Fatalf("Parse(%q) = %+v", tok, parsed)
		}
	}
}

func TestGenerateUsesEveryCharacterWithoutBias(t *testing.T) {
	// Bytes 0..251 map onto the alphabet 7 times each; 252..255 are dropped.
	var in bytes.Buffer
	for range 3 {
		for b := range 256 {
			in.WriteByte(byte(b))
		}
	}
	s, err := randomString(&in, 36*7*2)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[rune]int{}
	for _, c := range s {
		counts[c]++
	}
	for _, c := range alphabet {
		if counts[c] != 14 {
			t.Errorf("%q came %d times, want 14", c, counts[c])
		}
	}
	if len(counts) != len(alphabet) {
		t.Errorf("characters outside the alphabet: %v", counts)
	}
}

func TestGenerateFailsWhenRandomnessFails(t *testing.T) {
	if _, err := generate(strings.NewReader("short")); err == nil || !strings.Contains(err.Error(), "generating a bootstrap token") {
		t.Fatalf("error = %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"", "abcdef", "abcdef.0123456789abcde", "ABCDEF.0123456789abcdef", "abcdef:0123456789abcdef", " abcdef.0123456789abcdef"} {
		if _, err := Parse(s); err == nil || !strings.Contains(err.Error(), "6 and 16 characters of [a-z0-9]") {
			t.Errorf("Parse(%q) error = %v", s, err)
		}
	}
}

var now = time.Date(2026, 3, 1, 10, 0, 0, 500, time.UTC)

func TestNewSecret(t *testing.T) {
	tok := Token{ID: "abcdef", Secret: "0123456789abcdef"}
	tests := []struct {
		name string
		opts Options
		want map[string]string
	}{
		{
			name: "with expiry and description",
			opts: Options{TTL: 2 * time.Hour, Description: "for edge-1", Labels: map[string]string{"a": "b"}},
			want: map[string]string{
				"token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-authentication": "true",
				"auth-extra-groups": RegisterClusterGroup, "expiration": "2026-03-01T12:00:00Z", "description": "for edge-1",
			},
		},
		{
			name: "no expiry",
			opts: Options{},
			want: map[string]string{
				"token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-authentication": "true",
				"auth-extra-groups": RegisterClusterGroup,
			},
		},
		{
			name: "other groups",
			opts: Options{TTL: time.Minute, Groups: []string{"system:bootstrappers:a", "system:bootstrappers:b"}},
			want: map[string]string{
				"token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-authentication": "true",
				"auth-extra-groups": "system:bootstrappers:a,system:bootstrappers:b", "expiration": "2026-03-01T10:01:00Z",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = func() time.Time { return now }
			s := NewSecret(tok, tc.opts)
			if s.Name != "bootstrap-token-abcdef" || s.Namespace != "kube-system" || s.Type != corev1.SecretTypeBootstrapToken {
				t.Errorf("secret %s/%s of type %q", s.Namespace, s.Name, s.Type)
			}
			got := map[string]string{}
			for k, v := range s.Data {
				got[k] = string(v)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.opts.Labels, s.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "default", opts: Options{}},
		{name: "negative ttl", opts: Options{TTL: -time.Hour}, wantErr: `ttl "-1h0m0s" is negative: give a duration such as 24h, or 0 for a token that never expires`},
		{name: "group outside the prefix", opts: Options{Groups: []string{"system:masters"}},
			wantErr: `group "system:masters" must start with "system:bootstrappers:": kube-apiserver accepts no other extra groups for bootstrap tokens`},
		{name: "bare prefix", opts: Options{Groups: []string{"system:bootstrappers:"}}, wantErr: `group "system:bootstrappers:" must start with`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	client := fake.NewClientset()
	tok, secret, err := Create(context.Background(), client, Options{TTL: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := client.CoreV1().Secrets("kube-system").Get(context.Background(), "bootstrap-token-"+tok.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Data["token-secret"]) != tok.Secret || string(stored.Data["expiration"]) != "2026-03-01T11:00:00Z" {
		t.Errorf("stored secret data %v does not hold token %s expiring at 11:00", stored.Data, tok)
	}
	if secret.Name != stored.Name {
		t.Errorf("returned secret %q, stored %q", secret.Name, stored.Name)
	}
}

func TestCreateTakesAnotherIDWhenOneIsTaken(t *testing.T) {
	// randomness that gives "aaaaaa..." twice (byte 0 is "a"), then "bbbbbb...".
	perToken := idLength + secretLength + (idLength+secretLength)/4
	randomness := func(tokens ...byte) *bytes.Buffer {
		var in bytes.Buffer
		for _, b := range tokens {
			in.Write(bytes.Repeat([]byte{b}, perToken))
		}
		return &in
	}
	taken := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-aaaaaa", Namespace: "kube-system"}}

	client := fake.NewClientset(taken)
	tok, _, err := create(context.Background(), client, Options{}, randomness(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID != "bbbbbb" {
		t.Errorf("token id = %q, want the third try's bbbbbb", tok.ID)
	}
	kept, err := client.CoreV1().Secrets("kube-system").Get(context.Background(), "bootstrap-token-aaaaaa", metav1.GetOptions{})
	if err != nil || len(kept.Data) != 0 {
		t.Fatalf("the taken Secret was changed: %v, %v", kept, err)
	}

	// Three taken ids in a row: an error, not an overwrite.
	_, _, err = create(context.Background(), fake.NewClientset(taken), Options{}, randomness(0, 0, 0))
	if !apierrors.IsAlreadyExists(err) {
		t.Fatalf("error = %v, want AlreadyExists", err)
	}
}

func TestCreateRefusals(t *testing.T) {
	t.Run("invalid options create nothing", func(t *testing.T) {
		client := fake.NewClientset()
		if _, _, err := Create(context.Background(), client, Options{TTL: -time.Second}); err == nil {
			t.Fatal("want an error")
		}
		if n := len(client.Actions()); n != 0 {
			t.Errorf("%d API calls for invalid options: %v", n, client.Actions())
		}
	})
	t.Run("forbidden comes back as the API error", func(t *testing.T) {
		client := fake.NewClientset()
		client.PrependReactor("create", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", nil)
		})
		_, _, err := Create(context.Background(), client, Options{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("error = %v, want Forbidden", err)
		}
	})
}
