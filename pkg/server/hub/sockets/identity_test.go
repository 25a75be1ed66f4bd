package sockets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

// mappingFile is a mapping file holding rules (YAML).
func mappingFile(rules string) []byte {
	return []byte("apiVersion: proxies.clusternet.io/v1alpha1\nkind: IdentityMapping\nrules:\n" + rules)
}

const exampleRules = `
- name: platform-admins-in-dev
  clusterSelector: {matchLabels: {env: dev}}
  from: {group: platform}
  to: {groups: [clusternet:cluster-admins]}
- name: parent-admins-everywhere
  from: {group: system:masters}
  to: {groups: [parent-admins]}
- name: ci-deployer
  clusterSelector: {matchExpressions: [{key: env, operator: In, values: [dev, staging]}]}
  from: {user: "system:serviceaccount:ci:deployer"}
  to: {user: ci-deployer, groups: [deployers]}
- name: ci-deployer-again
  from: {user: "system:serviceaccount:ci:deployer"}
  to: {user: someone-else}
`

func TestIdentityFor(t *testing.T) {
	dev := []map[string]string{{"env": "dev"}}
	prod := []map[string]string{{"env": "prod"}}
	for _, tc := range []struct {
		name    string
		rules   string // none: no mapping file
		user    user.Info
		cluster []map[string]string
		want    wire.Identity
		wantErr string
	}{{
		name: "a parent user keeps its name, uid and own groups; system: groups stay in the parent",
		user: &user.DefaultInfo{Name: "alice", UID: "u1", Groups: []string{"dev", "system:authenticated", "system:masters"}, Extra: map[string][]string{"scopes": {"a"}}},
		want: wire.Identity{User: "alice", UID: "u1", Groups: []string{"dev"}, Extra: map[string][]string{"scopes": {"a"}}},
	}, {
		name:    "the parent admin is not system:masters in a child",
		user:    &user.DefaultInfo{Name: "kubernetes-admin", Groups: []string{"system:masters", "system:authenticated"}},
		cluster: dev,
		want:    wire.Identity{User: "kubernetes-admin"},
	}, {
		name: "extras describing parent credentials are dropped",
		user: &user.DefaultInfo{Name: "alice", Extra: map[string][]string{
			"authentication.kubernetes.io/credential-id": {"JTI=1"},
			"authentication.kubernetes.io/pod-name":      {"p"},
			"authentication.kubernetes.io/node-name":     {"n"},
			"clusternet-token":                           {"a child token someone else sent"},
			"acme.com/team":                              {"payments"},
		}},
		want: wire.Identity{User: "alice", Extra: map[string][]string{"acme.com/team": {"payments"}}},
	}, {
		name:    "a parent ServiceAccount is refused without a rule",
		user:    &user.DefaultInfo{Name: "system:serviceaccount:ci:deployer", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"}},
		wantErr: `parent ServiceAccount "system:serviceaccount:ci:deployer" is not forwarded to children`,
	}, {
		name:    "a reserved parent user is refused without a rule",
		user:    &user.DefaultInfo{Name: "system:kube-scheduler"},
		wantErr: `parent user "system:kube-scheduler" has a reserved name`,
	}, {
		name:    "anonymous is refused",
		user:    &user.DefaultInfo{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}},
		wantErr: `parent user "system:anonymous" has a reserved name`,
	}, {
		name:    "a group rule adds groups in matching clusters",
		rules:   exampleRules,
		user:    &user.DefaultInfo{Name: "bob", UID: "u2", Groups: []string{"platform", "system:authenticated"}},
		cluster: dev,
		want:    wire.Identity{User: "bob", UID: "u2", Groups: []string{"platform", "clusternet:cluster-admins"}},
	}, {
		name:    "a group rule adds nothing in other clusters",
		rules:   exampleRules,
		user:    &user.DefaultInfo{Name: "bob", Groups: []string{"platform", "system:authenticated"}},
		cluster: prod,
		want:    wire.Identity{User: "bob", Groups: []string{"platform"}},
	}, {
		name:    "a selector matches no cluster whose labels are unknown",
		rules:   exampleRules,
		user:    &user.DefaultInfo{Name: "bob", Groups: []string{"platform"}},
		cluster: nil,
		want:    wire.Identity{User: "bob", Groups: []string{"platform"}},
	}, {
		name:    "a selector must match every ManagedCluster of the id",
		rules:   exampleRules,
		user:    &user.DefaultInfo{Name: "bob", Groups: []string{"platform"}},
		cluster: []map[string]string{{"env": "dev"}, {"env": "prod"}},
		want:    wire.Identity{User: "bob", Groups: []string{"platform"}},
	}, {
		name:    "system:masters is mapped only where a rule says so",
		rules:   exampleRules,
		user:    &user.DefaultInfo{Name: "kubernetes-admin", Groups: []string{"system:masters", "system:authenticated"}},
		cluster: prod,
		want:    wire.Identity{User: "kubernetes-admin", Groups: []string{"parent-admins"}},
	}, {
		name:    "a ServiceAccount mapped to a child user, first rule wins the name, uid dropped",
		rules:   exampleRules,
		user:    &user.DefaultInfo{Name: "system:serviceaccount:ci:deployer", UID: "sa-uid", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"}},
		cluster: dev,
		want:    wire.Identity{User: "ci-deployer", Groups: []string{"deployers"}},
	}, {
		name:    "the same ServiceAccount elsewhere falls to the next rule",
		rules:   exampleRules,
		user:    &user.DefaultInfo{Name: "system:serviceaccount:ci:deployer", Groups: []string{"system:serviceaccounts"}},
		cluster: prod,
		want:    wire.Identity{User: "someone-else"},
	}, {
		name:    "a ServiceAccount with only a group rule is still refused",
		rules:   "- name: sa-group\n  from: {group: system:serviceaccounts}\n  to: {groups: [robots]}\n",
		user:    &user.DefaultInfo{Name: "system:serviceaccount:ci:x", Groups: []string{"system:serviceaccounts"}},
		wantErr: "is not forwarded to children",
	}, {
		name: "the seed's token pass-through",
		user: &user.DefaultInfo{Name: "clusternet", Extra: map[string][]string{"clusternet-token": {"child-token"}}},
		want: wire.Identity{Token: "child-token"},
	}, {
		name: "the seed's certificate pass-through",
		user: &user.DefaultInfo{Name: "clusternet", Extra: map[string][]string{"clusternet-certificate": {"Y2VydA=="}, "clusternet-privatekey": {"a2V5"}}},
		want: wire.Identity{Certificate: "Y2VydA==", PrivateKey: "a2V5"},
	}, {
		// With the optional pass-through manifest anyone may impersonate
		// "clusternet": without credentials it must get nowhere.
		name:    "pass-through user without credentials is refused",
		user:    &user.DefaultInfo{Name: "clusternet", Groups: []string{"system:authenticated"}},
		wantErr: "carries none",
	}, {
		name:    "a certificate without its key is refused",
		user:    &user.DefaultInfo{Name: "clusternet", Extra: map[string][]string{"clusternet-certificate": {"Y2VydA=="}}},
		wantErr: "carries none",
	}, {
		name:    "an empty token is refused",
		user:    &user.DefaultInfo{Name: "clusternet", Extra: map[string][]string{"clusternet-token": {""}}},
		wantErr: "carries none",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := &IdentityMapper{}
			if tc.rules != "" {
				var err error
				if m, err = ParseIdentityMapping(mappingFile(tc.rules)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := m.IdentityFor(tc.user, tc.cluster)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("IdentityFor() error = %v, want one containing %q", err, tc.wantErr)
				}
				if strings.HasPrefix(tc.user.GetName(), "system:") && (!errors.Is(err, errNotForwarded) || !strings.Contains(err.Error(), "--identity-mapping-file")) {
					t.Errorf("IdentityFor() error = %v: want errNotForwarded naming the fix", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("IdentityFor() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNilMapperMapsNothing(t *testing.T) {
	var m *IdentityMapper
	got, err := m.IdentityFor(&user.DefaultInfo{Name: "alice", Groups: []string{"system:masters", "dev"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wire.Identity{User: "alice", Groups: []string{"dev"}}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if m.NeedsClusterLabels() {
		t.Error("a nil mapper needs cluster labels")
	}
}

func TestParseIdentityMapping(t *testing.T) {
	for _, tc := range []struct {
		name      string
		file      string
		wantErrs  []string
		wantLabel bool
	}{{
		name:      "the documented example",
		file:      string(mappingFile(exampleRules)),
		wantLabel: true,
	}, {
		name: "no selector needs no labels",
		file: string(mappingFile("- name: a\n  from: {user: alice}\n  to: {user: alice2}\n")),
	}, {
		name:     "wrong kind and version",
		file:     "apiVersion: v1\nkind: ConfigMap\nrules: []\n",
		wantErrs: []string{`apiVersion: Invalid value: "v1": must be proxies.clusternet.io/v1alpha1`, `kind: Invalid value: "ConfigMap": must be IdentityMapping`},
	}, {
		name:     "unknown fields are typos, not ignored",
		file:     string(mappingFile("- name: a\n  from: {group: x}\n  to: {group: y}\n")),
		wantErrs: []string{`unknown field "group"`},
	}, {
		name: "every bad rule is reported",
		file: string(mappingFile(`
- from: {user: a, group: b}
  to: {}
- name: x
  from: {user: clusternet}
  to: {user: clusternet, groups: ["", system:masters]}
- name: x
  clusterSelector: {matchExpressions: [{key: env, operator: Bogus}]}
  from: {group: g}
  to: {groups: [y]}
`)),
		wantErrs: []string{
			"rules[0].name: Required value",
			"rules[0].from: Invalid value",
			"set exactly one of user and group",
			"rules[0].to: Required value: set user, groups or both",
			`rules[1].from.user: Invalid value: "clusternet": is the pass-through user`,
			`rules[1].to.user: Invalid value: "clusternet"`,
			"rules[1].to.groups[0]: Required value",
			`rules[1].to.groups[1]: Invalid value: "system:masters": bypasses the child's RBAC`,
			`rules[2].name: Duplicate value: "x"`,
			"rules[2].clusterSelector: Invalid value",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseIdentityMapping([]byte(tc.file))
			if len(tc.wantErrs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if m.NeedsClusterLabels() != tc.wantLabel {
					t.Errorf("NeedsClusterLabels() = %v, want %v", m.NeedsClusterLabels(), tc.wantLabel)
				}
				return
			}
			if err == nil {
				t.Fatal("ParseIdentityMapping() accepted it")
			}
			if m != nil {
				t.Error("a bad file half-applied: ParseIdentityMapping returned a mapper")
			}
			for _, want := range tc.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestLoadIdentityMapping(t *testing.T) {
	m, err := LoadIdentityMapping("")
	if err != nil || m == nil || m.NeedsClusterLabels() {
		t.Fatalf("no file: %v, %v", m, err)
	}
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	if err := os.WriteFile(path, []byte("kind: IdentityMapping\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentityMapping(path); err == nil || !strings.Contains(err.Error(), `--identity-mapping-file "`+path+`"`) {
		t.Errorf("a bad file: error %v, want one naming the flag and the file", err)
	}
	if _, err := LoadIdentityMapping(path + ".missing"); err == nil || !strings.Contains(err.Error(), "--identity-mapping-file") {
		t.Errorf("a missing file: error %v", err)
	}
}
