package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/testutil"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	appslisters "github.com/clusternet/clusternet/pkg/generated/listers/apps/v1alpha1"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// distributionOptions size the distribution benchmark.
type distributionOptions struct {
	// sizes are the numbers of child clusters to measure with, one testbed
	// each, written like "4,8,12".
	sizes string
	// runs is how many Subscriptions it times on each.
	runs int
}

// benchDistributions measures distribution on a testbed of each size, one
// after the other, in dir.
func benchDistributions(ctx context.Context, dir, hubBin, agentBin string, o distributionOptions) ([]*distributionResults, error) {
	var sizes []int
	for _, f := range strings.Split(o.sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--distribution-clusters %q: want numbers of child clusters, e.g. 4,8,12", o.sizes)
		}
		sizes = append(sizes, n)
	}
	if o.runs < 1 {
		return nil, fmt.Errorf("--distribution-runs %d: want at least 1", o.runs)
	}
	var out []*distributionResults
	for _, n := range sizes {
		r, err := benchDistribution(ctx, filepath.Join(dir, fmt.Sprintf("distribution-%d", n)), hubBin, agentBin, n, o.runs)
		if err != nil {
			return nil, fmt.Errorf("%d clusters: %w", n, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// distributionRun is one Subscription timed from its creation.
type distributionRun struct {
	// success: every Description in phase Success for its latest spec;
	// available: every cluster reports the Deployment available;
	// ready: the Subscription's Ready condition True;
	// inChildren: the Deployment seen available in every child (read there);
	// deleted: from the Subscription's deletion until its Descriptions are
	// gone and the Deployment is gone from every child.
	success, available, ready, inChildren, deleted time.Duration
	// slowestPush and slowestPull are the latest Success of a pushed and a
	// pulling cluster.
	slowestPush, slowestPull time.Duration
	// parentRequests is how many requests the parent apiserver served from
	// the Subscription's creation until the Deployment was available in
	// every child (everyone's); requestsBy the same by "VERB resource"
	// (with "/subresource" when there is one).
	parentRequests float64
	requestsBy     requestCounts
	// hubCPU is the CPU time the hub spent meanwhile.
	hubCPU time.Duration
	// statusBytes is the size of the Subscription as JSON once Ready;
	// bytesPerDetail the size of its status.aggregatedStatuses per feed per
	// cluster.
	statusBytes, bytesPerDetail int
}

type distributionResults struct {
	clusters                int
	startup, registration   time.Duration
	runs                    []distributionRun
	hubRSSBefore, hubRSSEnd int64
	// rest is what the parent served in restFor after the runs, with
	// nothing rolling out.
	rest    requestCounts
	restFor time.Duration
}

// benchDistribution starts its own testbed of that many children (half,
// rounded up, pushed to by the hub, the others pulling), registers them, and times
// Subscriptions of a Deployment, a Service and a ConfigMap to every cluster.
func benchDistribution(ctx context.Context, dir, hubBin, agentBin string, clusters, runs int) (*distributionResults, error) {
	res := &distributionResults{clusters: clusters}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	tb, err := testbed.Up(ctx, testbed.Options{Dir: dir, Children: clusters})
	if err != nil {
		return nil, err
	}
	defer tb.Down()
	res.startup = time.Since(start)
	parent := tb.Parent
	hub, err := startHub(ctx, dir, "hub", parent, hubBin)
	if err != nil {
		return nil, err
	}
	defer stopProcess(hub.Process)
	cs, parentKube, dyn, err := parentClients(parent)
	if err != nil {
		return nil, err
	}

	// Register every child: even ones Dual with AppPusher on (the hub
	// pushes), odd ones Pull (the agent applies).
	start = time.Now()
	type child struct {
		kube kubernetes.Interface
		id   string
		push bool
	}
	children := make([]child, len(tb.Children))
	for i, c := range tb.Children {
		push := i%2 == 0
		mode := "--cluster-sync-mode=Dual"
		if !push {
			mode = "--cluster-sync-mode=Pull"
		}
		agent, err := startAgent(ctx, dir, agentBin, parent, c, agentOptions{name: "agent-" + c.Name, args: []string{mode}})
		if err != nil {
			return nil, err
		}
		defer stopProcess(agent.Process)
		children[i] = child{kube: agent.child, id: agent.id, push: push}
	}
	namespaceOf := map[string]int{} // dedicated namespace → cluster index
	for i, c := range children {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			list, err := cs.ClustersV1beta1().ManagedClusters("").List(ctx, metav1.ListOptions{LabelSelector: clusterv1beta1.LabelClusterID + "=" + c.id})
			if err != nil || len(list.Items) != 1 {
				return false, nil
			}
			m := list.Items[0]
			if m.Status.Readyz && m.Status.UseSocket {
				namespaceOf[m.Namespace] = i
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			return nil, fmt.Errorf("child %d (cluster %s) not registered with its tunnel up: %w", i+1, c.id, err)
		}
	}
	res.registration = time.Since(start)

	// Watch the Descriptions and Subscriptions the runs make.
	descFactory := externalversions.NewSharedInformerFactoryWithOptions(cs, 0, externalversions.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = appsv1alpha1.LabelSubscriptionNamespace + "=bench"
	}))
	subsFactory := externalversions.NewSharedInformerFactoryWithOptions(cs, 0, externalversions.WithNamespace("bench"))
	descInformer := descFactory.Apps().V1alpha1().Descriptions()
	subsInformer := subsFactory.Apps().V1alpha1().Subscriptions()
	changed := make(chan struct{}, 1)
	notify := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: notify, UpdateFunc: func(_, n any) { notify(n) }, DeleteFunc: notify}
	if _, err := descInformer.Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
	if _, err := subsInformer.Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for _, f := range []externalversions.SharedInformerFactory{descFactory, subsFactory} {
		f.Start(watchCtx.Done())
		f.WaitForCacheSync(watchCtx.Done())
	}

	if _, err := parentKube.CoreV1().Namespaces().Create(ctx, &benchNamespace, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	res.hubRSSBefore = framework.ProcMemory(hub.Pid)["VmRSS"]
	for run := range runs {
		name := fmt.Sprintf("bench-%d", run)
		if err := createTemplates(ctx, dyn, name); err != nil {
			return nil, err
		}
		// Settled: what was pending from the previous run (its deletion's
		// status writes, say) is not counted as this run's.
		time.Sleep(2 * time.Second)
		requestsBefore, err := parentRequests(ctx, parentKube)
		if err != nil {
			return nil, err
		}
		cpuBefore := framework.CPUTime(hub.Pid)
		sub := benchSubscription(name, children[0].id)
		for _, c := range children[1:] {
			sub.Spec.Subscribers = append(sub.Spec.Subscribers, appsv1alpha1.Subscriber{ClusterAffinity: &metav1.LabelSelector{
				MatchLabels: map[string]string{clusterv1beta1.LabelClusterID: c.id}}})
		}
		start := time.Now()
		if _, err := cs.AppsV1alpha1().Subscriptions("bench").Create(ctx, sub, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		var r distributionRun
		succeededAt := map[string]time.Duration{}
		deadline := time.After(5 * time.Minute)
		for r.success == 0 || r.available == 0 || r.ready == 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-deadline:
				return nil, fmt.Errorf("run %d: not done within 5 minutes: %s", run, describeRun(descInformer.Lister(), name))
			case <-changed:
			}
			descs, err := descInformer.Lister().List(labelsFor(name))
			if err != nil {
				return nil, err
			}
			elapsed := time.Since(start)
			success, available := 0, 0
			for _, d := range descs {
				if d.Status.Phase != appsv1alpha1.DescriptionPhaseSuccess || d.Status.ObservedGeneration != d.Generation {
					continue
				}
				success++
				if _, ok := succeededAt[d.Namespace]; !ok {
					succeededAt[d.Namespace] = elapsed
				}
				if deploymentAvailable(d) {
					available++
				}
			}
			if r.success == 0 && success == len(children) {
				r.success = elapsed
			}
			if r.available == 0 && available == len(children) {
				r.available = elapsed
			}
			if s, err := subsInformer.Lister().Subscriptions("bench").Get(name); err == nil && r.ready == 0 {
				if c := meta.FindStatusCondition(s.Status.Conditions, "Ready"); c != nil && c.Status == metav1.ConditionTrue {
					r.ready = elapsed
				}
			}
		}
		var perCluster []string
		for ns, at := range succeededAt {
			mode := "pull"
			if children[namespaceOf[ns]].push {
				mode = "push"
			}
			perCluster = append(perCluster, fmt.Sprintf("%s %s", mode, at.Round(time.Millisecond)))
			if children[namespaceOf[ns]].push {
				r.slowestPush = max(r.slowestPush, at)
			} else {
				r.slowestPull = max(r.slowestPull, at)
			}
		}
		// Read in every child: the Deployment available there.
		for i, c := range children {
			err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
				d, err := c.kube.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, nil
				}
				return d.Status.ObservedGeneration == d.Generation && d.Status.AvailableReplicas == 2 && d.Status.UpdatedReplicas == 2, nil
			})
			if err != nil {
				return nil, fmt.Errorf("run %d: Deployment default/%s not available in child %d: %w", run, name, i+1, err)
			}
		}
		r.inChildren = time.Since(start)
		r.hubCPU = framework.CPUTime(hub.Pid) - cpuBefore
		requestsAfter, err := parentRequests(ctx, parentKube)
		if err != nil {
			return nil, err
		}
		if reasons, err := eventReasons(ctx, parentKube, start); err == nil {
			fmt.Fprintf(os.Stderr, "bench: distribution, %d clusters, run %d: events in the parent since the create: %s\n", clusters, run, reasons)
		}
		r.requestsBy = requestsAfter.minus(requestsBefore)
		r.parentRequests = r.requestsBy.total()
		fmt.Fprintf(os.Stderr, "bench: distribution, %d clusters, run %d: parent requests per cluster by verb and resource: %s\n",
			clusters, run, r.requestsBy.perCluster(clusters))
		if s, err := cs.AppsV1alpha1().Subscriptions("bench").Get(ctx, name, metav1.GetOptions{}); err == nil {
			b, _ := json.Marshal(s)
			r.statusBytes = len(b)
			var entries int
			for _, a := range s.Status.AggregatedStatuses {
				entries += len(a.FeedStatusDetails)
			}
			if details, err := json.Marshal(s.Status.AggregatedStatuses); err == nil && entries > 0 {
				r.bytesPerDetail = len(details) / entries
			}
		}

		// Delete it: every Description gone, and the Deployment from every child.
		start = time.Now()
		if err := cs.AppsV1alpha1().Subscriptions("bench").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			return nil, err
		}
		err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			descs, err := descInformer.Lister().List(labelsFor(name))
			if err != nil || len(descs) > 0 {
				return false, nil
			}
			for _, c := range children {
				if _, err := c.kube.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("run %d: not cleaned up: %w", run, err)
		}
		r.deleted = time.Since(start)
		res.runs = append(res.runs, r)
		slices.Sort(perCluster)
		fmt.Fprintf(os.Stderr, "bench: distribution, %d clusters, run %d: Success %s (per cluster: %s), available %s, Ready %s, deleted %s\n",
			clusters, run, r.success.Round(time.Millisecond), strings.Join(perCluster, ", "), r.available.Round(time.Millisecond), r.ready.Round(time.Millisecond), r.deleted.Round(time.Millisecond))
	}
	res.hubRSSEnd = framework.ProcMemory(hub.Pid)["VmRSS"]
	// At rest: nothing rolls out, the agents only beat and the
	// controllers only resync.
	before, err := parentRequests(ctx, parentKube)
	if err != nil {
		return nil, err
	}
	restStart := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(restWindow):
	}
	after, err := parentRequests(ctx, parentKube)
	if err != nil {
		return nil, err
	}
	res.rest = after.minus(before)
	res.restFor = time.Since(restStart)
	fmt.Fprintf(os.Stderr, "bench: distribution, %d clusters, at rest for %s: parent requests per cluster by verb and resource: %s\n",
		clusters, res.restFor.Round(time.Second), res.rest.perCluster(clusters))
	return res, nil
}

// restWindow is how long the parent's requests are counted at rest.
const restWindow = 30 * time.Second

// writeVerbs are the apiserver_request_total verbs that write.
var writeVerbs = []string{"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"}

// writes sums c's writes.
func (c requestCounts) writes() float64 {
	var sum float64
	for k, v := range c {
		verb, _, _ := strings.Cut(k, " ")
		if slices.Contains(writeVerbs, verb) {
			sum += v
		}
	}
	return sum
}

// benchNamespace is where the benchmark's Subscriptions live.
var benchNamespace = corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}

// labelsFor selects the Bases and Descriptions of Subscription bench/name.
func labelsFor(name string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{appsv1alpha1.LabelSubscriptionNamespace: "bench", appsv1alpha1.LabelSubscriptionName: name})
}

// benchSubscription sends name's Deployment, Service and ConfigMap (in the
// children's namespace default) to the cluster with id first; the caller
// adds the others.
func benchSubscription(name, first string) *appsv1alpha1.Subscription {
	return &appsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bench"},
		Spec: appsv1alpha1.SubscriptionSpec{
			Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: &metav1.LabelSelector{
				MatchLabels: map[string]string{clusterv1beta1.LabelClusterID: first}}}},
			Feeds: []appsv1alpha1.Feed{
				{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: name},
				{APIVersion: "v1", Kind: "Service", Namespace: "default", Name: name},
				{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: name},
			},
		},
	}
}

// createTemplates writes name's ConfigMap, Service and Deployment through
// the shadow API, as `kubectl clusternet apply` does.
func createTemplates(ctx context.Context, dyn dynamic.Interface, name string) error {
	for _, t := range []struct{ resource, body string }{
		{"configmaps", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME","namespace":"default"},"data":{"config.yaml":"replicas: 2\n"}}`},
		{"services", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"NAME","namespace":"default"},"spec":{"selector":{"app":"NAME"},"ports":[{"port":80}]}}`},
		{"deployments", `apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME, namespace: default, labels: {app: NAME}}
spec:
  replicas: 2
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec: {containers: [{name: web, image: nginx:1.14.2, ports: [{containerPort: 80}]}]}`},
	} {
		raw, err := yaml.YAMLToJSON([]byte(strings.ReplaceAll(t.body, "NAME", name)))
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return err
		}
		gvr := schema.GroupVersionResource{Group: "shadow", Version: "v1alpha1", Resource: t.resource}
		if _, err := dyn.Resource(gvr).Namespace("default").Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("template %s %s through the shadow API: %w", t.resource, name, err)
		}
	}
	return nil
}

// deploymentAvailable says d's status reports its Deployment available.
func deploymentAvailable(d *appsv1alpha1.Description) bool {
	for _, ms := range d.Status.ManifestStatuses {
		if ms.Kind == "Deployment" {
			return ms.Available
		}
	}
	return false
}

func describeRun(lister appslisters.DescriptionLister, name string) string {
	descs, _ := lister.List(labelsFor(name))
	var states []string
	for _, d := range descs {
		states = append(states, fmt.Sprintf("%s/%s %q (generation %d observed %d) %s", d.Namespace, d.Name, d.Status.Phase, d.Generation, d.Status.ObservedGeneration, d.Status.Reason))
	}
	slices.Sort(states)
	return fmt.Sprintf("%d Descriptions: %s", len(descs), strings.Join(states, "; "))
}

// eventReasons counts the parent's events first seen since, by kind of
// object and reason, e.g. "Description/SuccessfullyDeployed 4".
func eventReasons(ctx context.Context, kube kubernetes.Interface, since time.Time) (string, error) {
	list, err := kube.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	counts := requestCounts{}
	for _, e := range list.Items {
		first := e.FirstTimestamp.Time
		if first.IsZero() {
			first = e.EventTime.Time
		}
		if first.Before(since.Truncate(time.Second)) {
			continue
		}
		counts[e.InvolvedObject.Kind+"/"+e.Reason]++
	}
	return counts.perCluster(1), nil
}

// requestCounts are the parent apiserver's apiserver_request_total by
// "VERB resource[/subresource]", with the code when it is not 2xx.
type requestCounts map[string]float64

// parentRequests reads the parent apiserver's apiserver_request_total,
// summed by verb and resource (over codes, scopes, components).
func parentRequests(ctx context.Context, kube kubernetes.Interface) (requestCounts, error) {
	raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("the parent's /metrics: %w", err)
	}
	families, err := testutil.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the parent's /metrics: %w", err)
	}
	out := requestCounts{}
	family, ok := families["apiserver_request_total"]
	if !ok {
		return out, nil
	}
	for _, m := range family.GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		key := l["verb"] + " " + l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		if code := l["code"]; code != "" && !strings.HasPrefix(code, "2") {
			key += " " + code // a conflict is a request, and says who raced whom
		}
		out[key] += m.GetCounter().GetValue()
	}
	return out, nil
}

// byCount is c's keys, the most counted first.
func (c requestCounts) byCount() []string {
	keys := slices.Collect(maps.Keys(c))
	slices.SortFunc(keys, func(a, b string) int {
		if n := cmp.Compare(c[b], c[a]); n != 0 {
			return n
		}
		return strings.Compare(a, b)
	})
	return keys
}

// minus is what c counted since before.
func (c requestCounts) minus(before requestCounts) requestCounts {
	out := requestCounts{}
	for k, v := range c {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func (c requestCounts) total() float64 {
	var sum float64
	for _, v := range c {
		sum += v
	}
	return sum
}

// perCluster lists c divided by clusters, largest first, e.g.
// "PATCH descriptions/status 2.0, WATCH descriptions 1.0".
func (c requestCounts) perCluster(clusters int) string {
	keys := c.byCount()
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.2f", k, c[k]/float64(clusters))
	}
	return strings.Join(parts, ", ")
}

func distributionSection(results []*distributionResults) string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
	cell := func(r *distributionResults, get func(distributionRun) time.Duration) string {
		var v []time.Duration
		for _, run := range r.runs {
			v = append(v, get(run))
		}
		slices.Sort(v)
		return ms(percentile(v, 0.5)) + " / " + ms(v[len(v)-1])
	}
	var sizes []string
	for _, r := range results {
		sizes = append(sizes, strconv.Itoa(r.clusters))
	}
	last := results[len(results)-1]
	var b strings.Builder
	fmt.Fprintf(&b, "## Distribution: one Subscription to every cluster, until every Description is Success\n\n")
	fmt.Fprintf(&b, "Measured %s on %s/%s, %d CPUs, Kubernetes %s (testbed), with %s child clusters (one testbed each;\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), testbed.KubeVersion(), strings.Join(sizes, ", "))
	fmt.Fprintf(&b, "half of them, rounded up, Dual with AppPusher on: the hub pushes; the others Pull: their agent applies),\n")
	fmt.Fprintf(&b, "%d Subscriptions timed one after the other on each.\n\n", len(last.runs))
	fmt.Fprintf(&b, "Command: `make bench` (all benchmarks), or this one alone:\n")
	fmt.Fprintf(&b, "`go run ./test/bench --hub bin/hub --agent bin/agent --only distribution --distribution-clusters %s`\n\n", strings.Join(sizes, ","))
	fmt.Fprintf(&b, "Each run writes a ConfigMap, a Service and a Deployment (2 replicas) through the shadow API, creates a\n")
	fmt.Fprintf(&b, "Subscription of the three to every cluster and times from that create: Descriptions and Subscription as a\n")
	fmt.Fprintf(&b, "watch of the parent sees them, the Deployment read in each child. Then it deletes the Subscription.\n\n")
	fmt.Fprintf(&b, "| p50 / max over the runs | %s |\n|---|%s\n", strings.Join(sizes, " clusters | ")+" clusters", strings.Repeat("---|", len(results)))
	row := func(what string, cellOf func(*distributionResults) string) {
		var cells []string
		for _, r := range results {
			cells = append(cells, cellOf(r))
		}
		fmt.Fprintf(&b, "| %s | %s |\n", what, strings.Join(cells, " | "))
	}
	for _, m := range []struct {
		what string
		get  func(distributionRun) time.Duration
	}{
		{"create → every Description in phase Success", func(x distributionRun) time.Duration { return x.success }},
		{"… the slowest pushed cluster's", func(x distributionRun) time.Duration { return x.slowestPush }},
		{"… the slowest pulling cluster's", func(x distributionRun) time.Duration { return x.slowestPull }},
		{"create → the Subscription's Ready=True", func(x distributionRun) time.Duration { return x.ready }},
		{"create → every cluster reporting the Deployment available", func(x distributionRun) time.Duration { return x.available }},
		{"create → the Deployment available, read in every child", func(x distributionRun) time.Duration { return x.inChildren }},
		{"delete → Descriptions and Deployments gone everywhere", func(x distributionRun) time.Duration { return x.deleted }},
	} {
		row(m.what, func(r *distributionResults) string { return cell(r, m.get) })
	}
	perRun := func(r *distributionResults, get func(distributionRun) float64) (float64, float64) {
		var sum float64
		for _, run := range r.runs {
			sum += get(run)
		}
		avg := sum / float64(len(r.runs))
		return avg, avg / float64(r.clusters)
	}
	row("hub CPU, create → available in every child (per cluster)", func(r *distributionResults) string {
		all, one := perRun(r, func(x distributionRun) float64 { return float64(x.hubCPU) })
		return ms(time.Duration(all)) + " (" + ms(time.Duration(one)) + ")"
	})
	row("parent apiserver requests, create → available, everyone's (per cluster)", func(r *distributionResults) string {
		all, one := perRun(r, func(x distributionRun) float64 { return x.parentRequests })
		return fmt.Sprintf("%.0f (%.0f)", all, one)
	})
	row("parent writes per cluster per second at rest (over "+restWindow.String()+"), Leases apart", func(r *distributionResults) string {
		if r.restFor <= 0 {
			return "-"
		}
		per := func(n float64) float64 { return n / float64(r.clusters) / r.restFor.Seconds() }
		var leases float64
		for k, v := range r.rest {
			if verb, rest, _ := strings.Cut(k, " "); slices.Contains(writeVerbs, verb) && strings.HasPrefix(rest, "leases") {
				leases += v
			}
		}
		return fmt.Sprintf("%.3f (+ %.3f Leases)", per(r.rest.writes()-leases), per(leases))
	})
	row("hub RSS before → after the runs", func(r *distributionResults) string {
		return fmt.Sprintf("%d → %d MiB", r.hubRSSBefore>>20, r.hubRSSEnd>>20)
	})
	row("testbed start; agents registered, tunnels up", func(r *distributionResults) string {
		return r.startup.Round(time.Second).String() + "; " + r.registration.Round(100*time.Millisecond).String()
	})
	var statusBytes, perDetail int
	for _, run := range last.runs {
		statusBytes = max(statusBytes, run.statusBytes)
		perDetail = max(perDetail, run.bytesPerDetail)
	}
	fmt.Fprintf(&b, "\nEvery cluster runs on the same 2 cores here (a child is an etcd, an apiserver, a controller manager, a\n")
	fmt.Fprintf(&b, "scheduler and kwok), so these times include the children competing for the CPU with the hub and the\n")
	fmt.Fprintf(&b, "parent. The hub's CPU and the parent's requests per cluster do not depend on that: they are the figures\n")
	fmt.Fprintf(&b, "to scale. The hub's pusher deploys `--workers` (default 16) Descriptions at a time, while each pulling\n")
	fmt.Fprintf(&b, "agent applies its own cluster's (the run's per-cluster times are on standard error).\n")
	cpuPer, reqPer := 0.0, 0.0
	for _, run := range last.runs {
		cpuPer += float64(run.hubCPU) / float64(last.clusters) / float64(len(last.runs))
		reqPer += run.parentRequests / float64(last.clusters) / float64(len(last.runs))
	}
	fmt.Fprintf(&b, "Scaled linearly from %d clusters, one such Subscription to 1,000 clusters would cost the hub about %.0f s of\n",
		last.clusters, time.Duration(cpuPer*1000).Seconds())
	fmt.Fprintf(&b, "CPU and the parent about %.0f requests: what the 1,000-cluster run below is to check.\n\n", reqPer*1000)
	b.WriteString(requestsTable(last))
	b.WriteString(distributionWrites)
	fmt.Fprintf(&b, "With %d clusters the Ready Subscription is %d bytes as JSON (status.aggregatedStatuses: %d bytes per feed per\n", last.clusters, statusBytes, perDetail)
	b.WriteString("cluster). The hub lists clusters in the status only as far as it fits in 64 KiB (MaxStatusBytes; docs/api.md,\n")
	b.WriteString("\"A Subscription's status at scale\"), so it no longer grows with the fleet.\n\n")
	b.WriteString(distributionAt1000)
	return b.String()
}

// requestsTable lists the parent's requests per cluster per rollout by
// verb and resource, the mean over r's runs, most first.
func requestsTable(r *distributionResults) string {
	mean := requestCounts{}
	for _, run := range r.runs {
		for k, v := range run.requestsBy {
			mean[k] += v / float64(len(r.runs))
		}
	}
	keys := mean.byCount()
	var b strings.Builder
	fmt.Fprintf(&b, "The parent's requests per cluster per rollout with %d clusters, by verb and resource (apiserver_request_total,\n", r.clusters)
	fmt.Fprintf(&b, "mean of the runs; everyone's: hub, agents and this benchmark's own watches and reads):\n\n")
	fmt.Fprintf(&b, "| verb resource | per cluster |\n|---|---|\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | %.2f |\n", k, mean[k]/float64(r.clusters))
	}
	fmt.Fprintf(&b, "| total | %.2f (writes %.2f) |\n\n", mean.total()/float64(r.clusters), mean.writes()/float64(r.clusters))
	return b.String()
}

// distributionWrites is what issue 16's "fewer writes" changed, measured
// before and after with this section's command at 4 clusters and 3 runs.
const distributionWrites = `Issue 16 ("fewer writes"), per cluster per rollout at 4 clusters, 3 runs, before → after
(` + "`go run ./test/bench --hub bin/hub --agent bin/agent --only distribution --distribution-clusters 4 --distribution-runs 3`" + `):

| verb resource | before | after | what changed |
|---|---|---|---|
| PUT descriptions/status (409 conflicts included) | 5.67 (409s not counted apart; a run with every cut but the Pending wait: 4.67, 1.00 of them 409) | 4.00 (no 409) | the deployers report a change of their objects' status in the child 1 s after it (statusSettle), so a Deployment's rollout steps make one write; a report compares with the deployer's own last write instead of reading the Description again; a Description the hub created a moment ago waits (once, at most 2 s) for the hub's Pending before the deployer's first write, which raced it and conflicted every time |
| GET descriptions | 0.58 | 0 | (the reads after those conflicts, and before a report) |
| POST events | 3.00 | 2.00 | no Rendered event for a Description's first render (a render again still says why) |
| PUT subscriptions/status | 2.58 | 0.83 | the Subscription's status is written 1 s after a report (statusChanged), once for every report meanwhile; input changes are not delayed |
| PUT bases/status | 1.25 | 1.00 | a Base's sync on a cache that has not seen the hub's own status write starts from that write, so it writes nothing again; a Description created a moment ago and not cached yet is not created again |
| all | 20.25 (writes 18.92) | 14.08 (writes 13.75) | |
| all but Leases | 18.25 (writes 16.92) | 12.41 (writes 12.08) | |

"PUT leases" is time, not rollout: the hub renews each cluster's tunnel Lease every 5 s and its
leader-election Lease every 2 s, so it grows with how long a run takes on this shared machine. At rest the
Leases are nearly all the parent's writes (the row above); by those periods they should cost 0.2 + 0.5 /
clusters per cluster per second, so more renewals happen than the periods say.
What was left per cluster then, each a write the design needed: the Base (create, its Rendered condition), the
Description (create; four status writes: the hub's Pending, the deployer's write-ahead list of what it will
apply, the outcome, one report of availability), the SuccessfullyDeployed event and the Subscription's Bound
event (one per cluster, from the scheduling stage): 9. The subject access reviews, FeedInventory and
Subscription writes are per rollout, whatever the number of clusters. Since then the hub writes no Pending
on a new Description (the deployer's write-ahead list says Pending) and binding is one Bound event per
scheduling round: by the count above 7 per cluster here (not re-measured), and 6.1 measured at 1,000
clusters, where a Deployment in the in-memory children is available as it is applied, so the outcome
carries it (section "Scale" below).

`

const distributionAt1000 = `At 1,000 clusters: ` + "`make bench-scale`" + ` (stand-in agents with real registration and tunnels, in-memory
children, and two real children), section "Scale: many clusters on one parent and one hub" below.
`
