package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/deployer"
)

// childObject is what the invariants need of an object in a child.
type childObject struct {
	uid      types.UID
	hash     string
	deleting bool
	sub      string
	managers []string // field managers that applied (operation Apply)
}

// childState is one observation of a child: the Descriptions of its
// dedicated namespace (from the parent) and the Clusternet-labelled objects
// of the applications' namespace (from the child).
type childState struct {
	descs map[string]*appsv1alpha1.Description
	objs  map[string]map[objKey]childObject // by Subscription name
}

func (w *world) observeChild(ctx context.Context, c *child) (*childState, error) {
	descs, err := w.cs.AppsV1alpha1().Descriptions(c.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	st := &childState{descs: map[string]*appsv1alpha1.Description{}, objs: map[string]map[objKey]childObject{}}
	for i := range descs.Items {
		st.descs[descs.Items[i].Name] = &descs.Items[i]
	}
	sel := metav1.ListOptions{LabelSelector: appsv1alpha1.LabelSubscriptionName}
	cms, err := c.kube.CoreV1().ConfigMaps(appNamespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	deploys, err := c.kube.AppsV1().Deployments(appNamespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	add := func(kind string, m metav1.ObjectMeta) {
		sub := m.Labels[appsv1alpha1.LabelSubscriptionName]
		if st.objs[sub] == nil {
			st.objs[sub] = map[objKey]childObject{}
		}
		o := childObject{uid: m.UID, hash: m.Annotations[deployer.AnnotationAppliedHash], deleting: m.DeletionTimestamp != nil, sub: sub}
		for _, f := range m.ManagedFields {
			if f.Operation == metav1.ManagedFieldsOperationApply {
				o.managers = append(o.managers, f.Manager)
			}
		}
		st.objs[sub][objKey(kind+"/"+m.Name)] = o
	}
	for _, o := range cms.Items {
		add("ConfigMap", o.ObjectMeta)
	}
	for _, o := range deploys.Items {
		add("Deployment", o.ObjectMeta)
	}
	return st, nil
}

// observe checks the continuous invariants every interval until ctx ends.
func (w *world) observe(ctx context.Context, interval time.Duration) {
	for ctx.Err() == nil {
		w.observeOnce(ctx, false)
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// observeOnce checks, for each child it can reach now:
//   - bound and armed: each object keeps the uid it had when armed (nothing
//     bound is deleted or replaced);
//   - sealed (unbound, Description gone): nothing is created or applied;
//   - objects belong to a known Subscription, applied by one field manager.
//
// forceArm (a converged checkpoint) arms every bound pair.
func (w *world) observeOnce(ctx context.Context, forceArm bool) {
	for _, c := range w.children {
		w.mu.Lock()
		startSeq := w.seq
		w.mu.Unlock()
		st, err := w.observeChild(ctx, c)
		if err != nil {
			continue // a fault: the next round sees it
		}
		w.mu.Lock()
		w.stats.observations++
		for _, a := range w.apps {
			w.checkPair(c, a, a.pairs[c.idx], st, startSeq, forceArm)
		}
		w.mu.Unlock()
		for sub, objs := range st.objs {
			known := sub == helmSub
			for _, a := range w.apps {
				known = known || a.name == sub
			}
			if !known {
				w.violate("unknown/"+c.Name+"/"+sub, "%s: objects of Subscription %q, which the test never made: %v", c.Cluster.Name, sub, objs)
			}
			for k, o := range objs {
				if sub == helmSub {
					continue // Helm writes its releases' objects itself
				}
				if len(o.managers) != 1 || o.managers[0] != deployer.FieldManager {
					w.violate("managers/"+c.Name+"/"+string(k), "%s: %s applied by field managers %v, want only %q", c.Cluster.Name, k, o.managers, deployer.FieldManager)
				}
			}
		}
	}
}

func (w *world) checkPair(c *child, a *app, p *pair, st *childState, startSeq int64, forceArm bool) {
	d := st.descs[a.name+appsv1alpha1.DescriptionGenericSuffix]
	objs := st.objs[a.name]
	if d != nil {
		if p.state == bound || p.state == binding {
			p.epochDescs[d.UID] = true
		} else {
			p.oldDescs[d.UID] = true
		}
	}
	switch p.state {
	case bound:
		current := d != nil && d.DeletionTimestamp == nil && d.Status.Phase == appsv1alpha1.DescriptionPhaseSuccess && d.Status.ObservedGeneration == d.Generation
		if !p.armed {
			// Armed early only on a Description made for this binding (new to
			// the test, created after the binding was written, seen by a
			// round that began after that); a converged checkpoint arms all.
			fresh := current && !p.oldDescs[d.UID] && startSeq >= p.boundSeq && !d.CreationTimestamp.Time.Before(p.boundAt.Truncate(time.Second))
			if current && (forceArm || fresh) {
				p.armed, p.uids = true, map[objKey]types.UID{}
				for k, o := range objs {
					if !o.deleting {
						p.uids[k] = o.uid
					}
				}
				w.stats.armed++
			}
			return
		}
		for k, uid := range p.uids {
			o, ok := objs[k]
			switch {
			case !ok:
				w.violate("gone/"+c.Name+"/"+string(k)+"/"+string(uid), "%s: %s (uid %s) of %s disappeared while the cluster stayed bound", c.Cluster.Name, k, uid, a.name)
			case o.uid != uid:
				w.violate("replaced/"+c.Name+"/"+string(k)+"/"+string(uid), "%s: %s of %s was replaced (uid %s -> %s) while the cluster stayed bound", c.Cluster.Name, k, a.name, uid, o.uid)
			case o.deleting:
				w.violate("deleting/"+c.Name+"/"+string(k)+"/"+string(uid), "%s: %s (uid %s) of %s is being deleted while the cluster stays bound", c.Cluster.Name, k, uid, a.name)
			}
		}
		// Objects that appeared since arming (none should: the feeds are fixed) are tracked too.
		for k, o := range objs {
			if _, ok := p.uids[k]; !ok && !o.deleting {
				p.uids[k] = o.uid
			}
		}
	case draining:
		if d == nil && p.unbindSeq != 0 && p.unbindSeq <= startSeq {
			p.state, p.sealed = sealed, map[objKey]sealedObj{}
			for k, o := range objs {
				p.sealed[k] = sealedObj{uid: o.uid, hash: o.hash}
			}
		}
	case sealed:
		for k, o := range objs {
			s, ok := p.sealed[k]
			if !ok || s.uid != o.uid || s.hash != o.hash {
				w.violate("unbound-apply/"+c.Name+"/"+string(k)+"/"+string(o.uid)+"/"+o.hash,
					"%s: %s of %s (uid %s, applied hash %s) was created or applied while the cluster is not bound (its Description already gone; before: %+v)",
					c.Cluster.Name, k, a.name, o.uid, o.hash, s)
			}
		}
	}
}

// converged says whether the parent and every child are what the model
// says, and if not, why.
func (w *world) converged(ctx context.Context) (bool, string) {
	var why []string
	w.mu.Lock()
	apps := make([]app, len(w.apps))
	for i, a := range w.apps {
		apps[i] = *a
	}
	helmVer := helmVersion(w.helm.version)
	w.mu.Unlock()
	for _, a := range apps {
		sub, err := w.cs.AppsV1alpha1().Subscriptions("default").Get(ctx, a.name, metav1.GetOptions{})
		switch {
		case !a.exists && !apierrors.IsNotFound(err):
			why = append(why, fmt.Sprintf("subscription %s still exists (%v)", a.name, err))
		case a.exists && err != nil:
			why = append(why, fmt.Sprintf("subscription %s: %v", a.name, err))
		case a.exists:
			var want []string
			for i, c := range w.children {
				if a.clusters[i] {
					want = append(want, c.Namespace+"/"+c.Name)
				}
			}
			got := slices.Clone(sub.Status.BindingClusters)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				why = append(why, fmt.Sprintf("subscription %s binds %v, want %v", a.name, got, want))
			}
		}
	}
	for _, c := range w.children {
		descs, err := w.cs.AppsV1alpha1().Descriptions(c.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			why = append(why, c.Cluster.Name+": "+err.Error())
			continue
		}
		byName := map[string]*appsv1alpha1.Description{}
		for i := range descs.Items {
			byName[descs.Items[i].Name] = &descs.Items[i]
		}
		for _, a := range apps {
			d := byName[a.name+appsv1alpha1.DescriptionGenericSuffix]
			cm, cmErr := c.kube.CoreV1().ConfigMaps(appNamespace).Get(ctx, a.name+"-config", metav1.GetOptions{})
			dep, depErr := c.kube.AppsV1().Deployments(appNamespace).Get(ctx, a.name, metav1.GetOptions{})
			if !a.bound(c.idx) {
				if d != nil {
					why = append(why, fmt.Sprintf("%s: Description %s still exists (unbound)", c.Cluster.Name, d.Name))
				}
				if !apierrors.IsNotFound(cmErr) || !apierrors.IsNotFound(depErr) {
					why = append(why, fmt.Sprintf("%s: %s's objects still in the unbound cluster (configmap: %v, deployment: %v)", c.Cluster.Name, a.name, cmErr, depErr))
				}
				continue
			}
			if d == nil {
				why = append(why, fmt.Sprintf("%s: no Description for %s", c.Cluster.Name, a.name))
				continue
			}
			if d.DeletionTimestamp != nil || d.Status.Phase != appsv1alpha1.DescriptionPhaseSuccess || d.Status.ObservedGeneration != d.Generation {
				why = append(why, fmt.Sprintf("%s: Description %s phase %q generation %d observed %d %s", c.Cluster.Name, d.Name, d.Status.Phase, d.Generation, d.Status.ObservedGeneration, d.Status.Reason))
			}
			if cmErr != nil {
				why = append(why, fmt.Sprintf("%s: configmap %s: %v", c.Cluster.Name, a.name, cmErr))
			} else if got, want := cm.Data["value"], a.wantValue(c.idx); got != want {
				why = append(why, fmt.Sprintf("%s: configmap %s value %q, want %q", c.Cluster.Name, a.name, got, want))
			}
			if depErr != nil {
				why = append(why, fmt.Sprintf("%s: deployment %s: %v", c.Cluster.Name, a.name, depErr))
			} else if got := deploymentState(dep); got != fmt.Sprintf("%d/%d", a.wantReplicas(), a.wantReplicas()) {
				why = append(why, fmt.Sprintf("%s: deployment %s spec/current replicas %s, want %d", c.Cluster.Name, a.name, got, a.wantReplicas()))
			}
		}
		d := byName[helmSub+appsv1alpha1.DescriptionHelmSuffix]
		if d == nil || d.Status.Phase != appsv1alpha1.DescriptionPhaseSuccess || d.Status.ObservedGeneration != d.Generation {
			state := "none"
			if d != nil {
				state = fmt.Sprintf("phase %q generation %d observed %d %s", d.Status.Phase, d.Generation, d.Status.ObservedGeneration, d.Status.Reason)
			}
			why = append(why, fmt.Sprintf("%s: Helm Description %s", c.Cluster.Name, state))
		}
		cm, err := c.kube.CoreV1().ConfigMaps(appNamespace).Get(ctx, helmSub+"-"+helmChartName+"-config", metav1.GetOptions{})
		if err != nil {
			why = append(why, fmt.Sprintf("%s: the Helm release's configmap: %v", c.Cluster.Name, err))
		} else if cm.Data["chartVersion"] != helmVer {
			why = append(why, fmt.Sprintf("%s: the Helm release is at chart %s, want %s", c.Cluster.Name, cm.Data["chartVersion"], helmVer))
		}
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// deploymentState is "spec/current" replicas of d once its controller has
// seen its latest spec. Readiness is left out: it is the fake kubelet's
// (kwok's), not Clusternet's, and kwok does not make pods Ready again after
// the node lifecycle controller marked them NotReady while the child's
// apiserver was being killed (seen in a 30-minute run: pods of child1 stayed
// NotReady 4 minutes, until they were replaced).
func deploymentState(d *appsv1.Deployment) string {
	var spec int32 = 1
	if d.Spec.Replicas != nil {
		spec = *d.Spec.Replicas
	}
	if d.Status.ObservedGeneration != d.Generation {
		return fmt.Sprintf("%d/(not observed)", spec)
	}
	return fmt.Sprintf("%d/%d", spec, d.Status.Replicas)
}

// checkAppliers checks that one component applies for each cluster, the
// one its sync mode names (the hub or the agent, never both): every
// SuccessfullyDeployed event of a Generic Description, and every Installed,
// Upgraded or Uninstalled event of a HelmRelease, comes from it. (A Helm
// Description's own SuccessfullyDeployed comes from the hub in every mode:
// the hub writes its status from the HelmReleases, docs/helm.md.)
func (w *world) checkAppliers(ctx context.Context) {
	for _, c := range w.children {
		evs, err := w.kube.CoreV1().Events(c.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			w.record("checking appliers of %s: %v", c.Cluster.Name, err)
			continue
		}
		var total int32
		for _, ev := range evs.Items {
			switch {
			case ev.InvolvedObject.Kind == "Description" && ev.Reason == deployer.ReasonDeployed && strings.HasSuffix(ev.InvolvedObject.Name, appsv1alpha1.DescriptionGenericSuffix):
				total += max(ev.Count, 1)
			case ev.InvolvedObject.Kind == "HelmRelease" && (ev.Reason == "Installed" || ev.Reason == "Upgraded" || ev.Reason == "Uninstalled"):
			default:
				continue
			}
			if ev.Source.Component != c.mode.applier {
				w.violate("applier/"+c.Name+"/"+ev.Source.Component+"/"+ev.InvolvedObject.Kind+"/"+ev.InvolvedObject.Name,
					"%s (%s mode): %s %s: %s event from %s (%d times), but only %s applies in this mode: %q",
					c.Cluster.Name, c.mode.mode, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Source.Component, max(ev.Count, 1), c.mode.applier, ev.Message)
			}
		}
		w.mu.Lock()
		w.stats.deployedEvents[c.idx] = int(total)
		w.mu.Unlock()
	}
}

// tunnelUp is whether a request through the parent and the hub reaches c's
// apiserver through its tunnel.
func (w *world) tunnelUp(ctx context.Context, c *child) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := w.kube.Discovery().RESTClient().Get().
		AbsPath("/apis/proxies.clusternet.io/v1alpha1/sockets", c.ID, "proxy/direct/version").Timeout(2 * time.Second).DoRaw(ctx)
	return err
}

// waitTunnel returns how long after since c's tunnel answered, polling
// every 50 ms for at most limit.
func (w *world) waitTunnel(ctx context.Context, c *child, since time.Time, limit time.Duration) (time.Duration, error) {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, limit, true, func(ctx context.Context) (bool, error) {
		last = w.tunnelUp(ctx, c)
		return last == nil, nil
	})
	if err != nil {
		return time.Since(since), fmt.Errorf("%w (last: %w)", err, last)
	}
	return time.Since(since), nil
}
