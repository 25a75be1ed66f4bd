package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/test/testbed"
)

// observation builds what observeChild returns for app0 in one child.
type observation struct {
	desc *appsv1alpha1.Description
	objs map[objKey]childObject
}

func (o observation) state() *childState {
	st := &childState{descs: map[string]*appsv1alpha1.Description{}, objs: map[string]map[objKey]childObject{"app0": o.objs}}
	if o.desc != nil {
		st.descs[o.desc.Name] = o.desc
	}
	return st
}

func successDesc(uid string, created time.Time) *appsv1alpha1.Description {
	d := &appsv1alpha1.Description{ObjectMeta: metav1.ObjectMeta{Name: "app0-generic", UID: types.UID(uid), Generation: 2, CreationTimestamp: metav1.NewTime(created)}}
	d.Status.Phase, d.Status.ObservedGeneration = appsv1alpha1.DescriptionPhaseSuccess, 2
	return d
}

func objects(kv ...string) map[objKey]childObject {
	out := map[objKey]childObject{}
	for i := 0; i+2 < len(kv)+1; i += 3 {
		out[objKey(kv[i])] = childObject{uid: types.UID(kv[i+1]), hash: kv[i+2], sub: "app0"}
	}
	return out
}

// TestCheckPair drives the invariants' state machine for one application
// and one child through the observations a run can make, and checks which
// of them are violations.
func TestCheckPair(t *testing.T) {
	later := time.Now().Add(time.Hour)
	cases := []struct {
		name string
		// steps alternate model changes and observations.
		steps []func(w *world, a *app) observation
		want  []string // violation key prefixes, in order
	}{
		{
			name: "bound objects keep their uids: no violation",
			steps: []func(*world, *app) observation{
				bind,
				observe(successDesc("d1", later), objects("ConfigMap/app0-config", "u1", "h1")),
				observe(successDesc("d1", later), objects("ConfigMap/app0-config", "u1", "h2")),
			},
		},
		{
			name: "a bound object replaced is a violation",
			steps: []func(*world, *app) observation{
				bind,
				observe(successDesc("d1", later), objects("ConfigMap/app0-config", "u1", "h1")),
				observe(successDesc("d1", later), objects("ConfigMap/app0-config", "u2", "h1")),
			},
			want: []string{"replaced/"},
		},
		{
			name: "a bound object gone is a violation",
			steps: []func(*world, *app) observation{
				bind,
				observe(successDesc("d1", later), objects("ConfigMap/app0-config", "u1", "h1")),
				observe(successDesc("d1", later), objects()),
			},
			want: []string{"gone/"},
		},
		{
			name: "a Description older than the binding does not arm it",
			steps: []func(*world, *app) observation{
				bind,
				observe(successDesc("d1", time.Now().Add(-time.Hour)), objects("ConfigMap/app0-config", "u1", "h1")),
				observe(successDesc("d1", time.Now().Add(-time.Hour)), objects("ConfigMap/app0-config", "u2", "h1")),
			},
		},
		{
			name: "pruned after unbinding, then nothing applied: no violation",
			steps: []func(*world, *app) observation{
				bind,
				observe(successDesc("d1", later), objects("ConfigMap/app0-config", "u1", "h1")),
				unbind,
				observe(successDesc("d1", later), objects()),
				observe(nil, objects()),
				observe(nil, objects()),
			},
		},
		{
			name: "applied again after the Description is gone is a violation",
			steps: []func(*world, *app) observation{
				bind,
				observe(successDesc("d1", later), objects("ConfigMap/app0-config", "u1", "h1")),
				unbind,
				observe(nil, objects("ConfigMap/app0-config", "u1", "h1")),
				observe(nil, objects("ConfigMap/app0-config", "u1", "h2")),
			},
			want: []string{"unbound-apply/"},
		},
		{
			name: "created in a cluster never bound is a violation",
			steps: []func(*world, *app) observation{
				observe(nil, objects("Deployment/app0", "u9", "h1")),
			},
			want: []string{"unbound-apply/"},
		},
		{
			name: "while binding, nothing is checked",
			steps: []func(*world, *app) observation{
				func(w *world, a *app) observation { a.pairs[0].state = binding; return observation{} },
				observe(nil, objects("Deployment/app0", "u9", "h1")),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			w := &world{seen: map[string]bool{}, children: []*child{{Cluster: &testbed.Cluster{Name: "child1"}}}}
			w.onViolation = func(key, msg string) { got = append(got, key[:strings.Index(key, "/")+1]) }
			a := newApp("app0", 1)
			w.apps = []*app{a}
			for _, step := range tc.steps {
				if o := step(w, a); o.objs != nil || o.desc != nil {
					w.checkPair(w.children[0], a, a.pairs[0], o.state(), w.seq, false)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}

func bind(w *world, a *app) observation {
	a.exists, a.clusters = true, map[int]bool{0: true}
	w.seq++
	p := a.pairs[0]
	p.state, p.armed, p.boundSeq, p.boundAt = bound, false, w.seq, time.Now()
	return observation{}
}

func unbind(w *world, a *app) observation {
	a.clusters = map[int]bool{}
	w.unbindLocked(a.pairs[0])
	w.seq++
	a.pairs[0].unbindSeq = w.seq
	return observation{}
}

func observe(d *appsv1alpha1.Description, objs map[objKey]childObject) func(*world, *app) observation {
	return func(*world, *app) observation { return observation{desc: d, objs: objs} }
}
