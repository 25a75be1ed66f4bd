package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/clusternet/clusternet/charts"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/bootstraptoken"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

// agentPodSelector selects the agent's pods (the chart's Deployment selector).
const agentPodSelector = "app=clusternet-agent"

// pollInterval paces the waits of join and unjoin.
const pollInterval = time.Second

// joiner runs join's steps, each returning the line it prints.
type joiner struct {
	*JoinOptions
	progress *progress

	id           string
	createdToken bool
	installed    bool
	waitUntil    time.Time
	managed      Cluster
}

// checkParent checks the parent twice: as you reach it (the hub's API is
// there) and as the agent will (the parent URL, trusting only the CA).
func (j *joiner) checkParent(ctx context.Context) (string, error) {
	gv := clusterv1beta1.SchemeGroupVersion.String()
	if _, err := j.clients.parentClusternet.Discovery().ServerResourcesForGroupVersion(gv); err != nil {
		switch {
		case !reached(err):
			return "", fmt.Errorf("the parent %q of your parent kubeconfig does not answer: %w: check --parent-kubeconfig and --parent-context", j.parentConfig.Host, err)
		case apierrors.IsNotFound(err):
			return "", fmt.Errorf("the parent %q serves no %s: install clusternet-hub there first (docs/install.md)", j.parentConfig.Host, gv)
		default:
			return "", fmt.Errorf("reading the parent's %s API: %w: check that clusternet-hub runs in the parent and its APIService is Available (kubectl get apiservice %s.%s)", gv, err, clusterv1beta1.SchemeGroupVersion.Version, clusterv1beta1.SchemeGroupVersion.Group)
		}
	}
	client, err := j.clients.anonymous(j.ParentURL, j.parentCA, "")
	if err != nil {
		return "", err
	}
	if _, err := client.Discovery().ServerVersion(); !reached(err) {
		return "", fmt.Errorf("parent URL %q: %s: the agent in the child would not reach the parent there either: pass --parent-url with the parent apiserver's address as the child's pods reach it (a name or IP its certificate is for)%s",
			j.ParentURL, unreachable(j.ParentURL, err), j.noCAHint())
	}
	if isLoopback(j.ParentURL) {
		j.progress.note("Warning: the parent URL %q is a loopback address, which the agent reaches only if it runs on the parent's machine: pass --parent-url with the address the child's pods reach", j.ParentURL)
	}
	return fmt.Sprintf("Parent %s answers, with the certificate the CA of your parent kubeconfig trusts", j.ParentURL), nil
}

// checkChild reads the child's cluster id and makes sure the parent does
// not know it yet.
func (j *joiner) checkChild(ctx context.Context) (string, error) {
	id, err := childClusterID(ctx, j.clients, j.childConfig.Host)
	if err != nil {
		return "", err
	}
	j.id = id
	existing, err := findManagedCluster(ctx, j.clients.parentClusternet, id)
	if err != nil {
		return "", err
	}
	if existing != nil {
		return "", fmt.Errorf("the child (cluster id %s) is registered with this parent already, as ManagedCluster %s/%s: run `kubectl clusternet unjoin` first to join it again",
			id, existing.Namespace, existing.Name)
	}
	if err := refuseTakeover(ctx, j.clients, j.ParentURL); err != nil {
		return "", err
	}
	return fmt.Sprintf("Child %s: cluster id %s, not registered with this parent yet, no agent but join's", j.childConfig.Host, id), nil
}

// childClusterID is the UID of the child's kube-system namespace, the id
// its agent registers with.
func childClusterID(ctx context.Context, c *fleetClients, host string) (string, error) {
	ns, err := c.childKube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	switch {
	case !reached(err):
		return "", fmt.Errorf("the child %q does not answer: %w: check your kubeconfig's current context, or pick the child with --context", host, err)
	case apierrors.IsForbidden(err):
		return "", fmt.Errorf("the child refuses to show namespace kube-system, whose UID is the cluster id: %w: use a context with cluster-admin rights in the child (--context)", err)
	case err != nil:
		return "", fmt.Errorf("reading the child's cluster id (namespace kube-system): %w: check that the child's apiserver is healthy (kubectl get --raw /readyz), then run the command again", err)
	}
	return string(ns.UID), nil
}

// findManagedCluster is the parent's ManagedCluster of cluster id, or nil.
func findManagedCluster(ctx context.Context, cs versioned.Interface, id string) (*clusterv1beta1.ManagedCluster, error) {
	list, err := cs.ClustersV1beta1().ManagedClusters(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{clusterv1beta1.LabelClusterID: id}).String(),
	})
	if err != nil {
		return nil, inParent("list", "managedclusters", "", err)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	return &list.Items[0], nil
}

// inParent explains a refused request to the parent.
func inParent(verb, resource, namespace string, err error) error {
	if !apierrors.IsForbidden(err) {
		return fmt.Errorf("%s %s in the parent: %w: check that the parent's apiserver and clusternet-hub are healthy, then run the command again", verb, resource, err)
	}
	where := "cluster-wide"
	if namespace != "" {
		where = "in namespace " + namespace
	}
	return fmt.Errorf("you lack %q on %q %s in the parent: ask a parent admin for it (or use --parent-context with more rights): %w", verb, resource, where, err)
}

// ensureToken makes a bootstrap token for this cluster, or checks the one
// given, by authenticating with it as the agent will.
func (j *joiner) ensureToken(ctx context.Context) (string, error) {
	if j.Token == "" {
		tok, secret, err := createBootstrapToken(ctx, j.clients.parentKube, bootstraptoken.Options{
			TTL:         joinTokenTTL,
			Description: fmt.Sprintf("made by kubectl clusternet join for cluster id %s; deleted once it joined", j.id),
			Labels:      map[string]string{clusterv1beta1.LabelCreatedBy: installedBy, clusterv1beta1.LabelClusterID: j.id},
			Now:         j.now,
		})
		if err != nil {
			return "", err
		}
		j.token, j.createdToken = tok, true
		if err := j.checkToken(ctx); err != nil {
			return "", err
		}
		return fmt.Sprintf("Bootstrap token %s made for this cluster: registration rights only, expires %s (deleted once joined)",
			tok.ID, secret.Data[bootstraptoken.KeyExpiration]), nil
	}
	if err := j.checkToken(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("Bootstrap token %s accepted by the parent", j.token.ID), nil
}

// checkToken authenticates with the token at the parent URL and checks
// its group. A fresh token is retried briefly: the apiserver learns of
// new token Secrets through a watch.
func (j *joiner) checkToken(ctx context.Context) error {
	var user, lastErr = "", error(nil)
	var groups []string
	attempts := 1
	if j.createdToken {
		attempts = 10
	}
	for i := 0; i < attempts; i++ {
		info, err := j.clients.whoAmI(ctx, j.ParentURL, j.parentCA, j.token.String())
		if lastErr = err; err == nil || !apierrors.IsUnauthorized(err) {
			user, groups = info.Username, info.Groups
			break
		}
		if i+1 == attempts || sleepCtx(ctx, pollInterval) != nil {
			break // lastErr says why
		}
	}
	switch {
	case apierrors.IsUnauthorized(lastErr) && j.createdToken:
		return fmt.Errorf("the parent refuses the bootstrap token join just made (%s)%s: its kube-apiserver does not accept bootstrap tokens: run it with --enable-bootstrap-token-auth: %w", j.token.ID, j.otherURLHint(), lastErr)
	case apierrors.IsUnauthorized(lastErr):
		return fmt.Errorf("--bootstrap-token %s.<secret>: the parent refuses it%s: it is expired, deleted or mistyped: make a fresh one with `kubectl clusternet create token --ttl 1h`, or leave --bootstrap-token out and join makes one: %w", j.token.ID, j.otherURLHint(), lastErr)
	case apierrors.IsForbidden(lastErr):
		// Authenticated; the parent only hides who it takes the token for.
		return nil
	case !reached(lastErr):
		return fmt.Errorf("parent URL %q: %s", j.ParentURL, unreachable(j.ParentURL, lastErr))
	case lastErr != nil:
		return fmt.Errorf("checking the bootstrap token with the parent: %w", lastErr)
	}
	if !slices.Contains(groups, bootstraptoken.RegisterClusterGroup) {
		return fmt.Errorf("--bootstrap-token %s.<secret> authenticates as %q with groups %q, without %q: the hub lets only that group register clusters: make a token with `kubectl clusternet create token`",
			j.token.ID, user, groups, bootstraptoken.RegisterClusterGroup)
	}
	if extra := slices.DeleteFunc(slices.Clone(groups), func(g string) bool { return slices.Contains(registrationGroups, g) }); len(extra) > 0 {
		return fmt.Errorf("--bootstrap-token %s.<secret> authenticates in groups %q beyond registration's: join writes the token into the child, where whoever reads the Secret gets those rights too: make a token for registration alone with `kubectl clusternet create token`",
			j.token.ID, extra)
	}
	return nil
}

// registrationGroups are all the groups a registration token may have:
// the apiserver's for every bootstrap token, and the hub's registration
// group.
var registrationGroups = []string{"system:bootstrappers", "system:authenticated", bootstraptoken.RegisterClusterGroup}

// otherURLHint names a parent URL other than the kubeconfig's as the
// likely reason the parent refuses a token: with a CA shared by several
// apiservers, the URL may reach another cluster, which knows no such token.
func (j *joiner) otherURLHint() string {
	if strings.TrimSuffix(j.ParentURL, "/") == strings.TrimSuffix(j.parentConfig.Host, "/") {
		return ""
	}
	return fmt.Sprintf(" at parent URL %q, which is not your parent kubeconfig's %q: most likely it is another apiserver trusting the same CA: pass --parent-url with the parent's own address; otherwise", j.ParentURL, j.parentConfig.Host)
}

// noCAHint tells to add the parent's CA when the kubeconfig has none: the
// agent then trusts only its image's system roots.
func (j *joiner) noCAHint() string {
	if len(j.parentCA) > 0 {
		return ""
	}
	return "; your parent kubeconfig has no CA for the parent (the agent would trust only its system roots): add the parent's CA to it (certificate-authority-data)"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// install applies the agent chart into the child: the namespace first
// (when join makes it), then everything else dry-run, then for real, so
// that a refused object changes nothing. What a failure leaves half-made
// is removed again (undoInstall).
func (j *joiner) install(ctx context.Context) (string, error) {
	ns, err := j.clients.childKube.CoreV1().Namespaces().Get(ctx, charts.Namespace, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return "", inChild("get", "namespace "+charts.Namespace, err)
	}
	if err == nil && ns.DeletionTimestamp != nil {
		return "", fmt.Errorf("namespace %s of the child is being deleted (an unjoin or uninstall still finishing): wait until it is gone (kubectl get namespace %s), then run join again",
			charts.Namespace, charts.Namespace)
	}
	makeNamespace := apierrors.IsNotFound(err)
	objs, err := agentObjects(j.agentValues(makeNamespace))
	if err != nil {
		return "", err
	}
	crds, err := j.applyMissingCRDs(ctx)
	if err != nil {
		return "", err
	}
	rest := objs
	if makeNamespace {
		j.installed = true
		if err := j.clients.applyToChild(ctx, objs[0], false); err != nil {
			return "", j.undoInstall(ctx, inChild("create", kindAndName(objs[0]), err))
		}
		rest = objs[1:]
	}
	for _, dryRun := range []bool{true, false} {
		// From the first real apply on, the child holds join's objects.
		j.installed = j.installed || !dryRun
		for _, obj := range rest {
			if err := j.clients.applyToChild(ctx, obj, dryRun); err != nil {
				return "", j.undoInstall(ctx, inChild("apply", kindAndName(obj), err))
			}
		}
	}
	j.waitUntil = j.now().Add(j.Timeout)
	return fmt.Sprintf("clusternet-agent installed into the child: %d objects, in namespace %s (image %s)%s", len(objs), charts.Namespace, agentImage(objs), crds), nil
}

// applyMissingCRDs applies the agent chart's CRDs the child lacks, as
// `helm install` does: one the child has stays as it is, and none is ever
// removed again (by unjoin either), since deleting a CRD deletes every
// object of it in the cluster. It returns the note for install's line.
func (j *joiner) applyMissingCRDs(ctx context.Context) (string, error) {
	ch, err := charts.Load(charts.Agent)
	if err != nil {
		return "", err
	}
	crds, err := charts.CRDs(ch)
	if err != nil {
		return "", err
	}
	var made []string
	for _, crd := range crds {
		got, err := j.clients.getInChild(ctx, crd)
		if err != nil {
			return "", err
		}
		if got != nil {
			continue
		}
		if err := j.clients.applyToChild(ctx, crd, false); err != nil {
			return "", inChild("create", kindAndName(crd), err)
		}
		made = append(made, crd.GetName())
	}
	if len(made) == 0 {
		return "", nil
	}
	return fmt.Sprintf(", and CRDs %s (kept by unjoin, as helm keeps them)", strings.Join(made, ", ")), nil
}

// undoInstall removes what install made before it failed with cause, and
// says so; when that fails too, join's objects stay and Run's error
// names unjoin.
func (j *joiner) undoInstall(ctx context.Context, cause error) error {
	if !j.installed {
		return cause
	}
	removed, err := removeJoined(context.WithoutCancel(ctx), j.clients)
	if err != nil {
		return fmt.Errorf("%w; removing what join had made failed too: %w", cause, err)
	}
	j.installed = false
	return fmt.Errorf("%w (join removed the %d objects it had made)", cause, len(removed))
}

// agentValues are the agent chart's values for this join.
func (j *joiner) agentValues(makeNamespace bool) map[string]any {
	v := map[string]any{
		"createNamespace":   makeNamespace,
		"parentURL":         j.ParentURL,
		"registrationToken": j.token.String(),
	}
	if len(j.parentCA) > 0 {
		v["parentCA"] = string(j.parentCA)
	}
	if j.ClusterName != "" {
		v["clusterName"] = j.ClusterName
	}
	if image, _ := imageValues(j.AgentImage); image != nil {
		v["image"] = image
	}
	return v
}

// agentObjects renders the agent chart, every object labelled as made by
// the plugin (unjoin removes what carries the label), the Namespace first.
func agentObjects(values map[string]any) ([]*unstructured.Unstructured, error) {
	ch, err := charts.Load(charts.Agent)
	if err != nil {
		return nil, err
	}
	rendered, err := charts.Render(ch, charts.Options{Values: values})
	if err != nil {
		return nil, fmt.Errorf("rendering the agent chart: %w", err)
	}
	objs, err := rendered.Objects()
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		l := maps.Clone(o.GetLabels())
		if l == nil {
			l = map[string]string{}
		}
		l[clusterv1beta1.LabelCreatedBy] = installedBy
		o.SetLabels(l)
	}
	return objs, nil
}

func agentImage(objs []*unstructured.Unstructured) string {
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		if len(containers) > 0 {
			if c, ok := containers[0].(map[string]any); ok {
				image, _ := c["image"].(string)
				return image
			}
		}
	}
	return "unknown"
}

func kindAndName(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + " " + o.GetName()
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// inChild explains a refused request to the child.
func inChild(verb, what string, err error) error {
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return fmt.Errorf("the child refuses to %s %s: %w: namespace %s is being deleted: wait until it is gone (kubectl get namespace %s), then run the command again",
			verb, what, err, charts.Namespace, charts.Namespace)
	}
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("the child refuses to %s %s: %w: join needs cluster-admin in the child (the agent's ClusterRoles grant every verb there, and only a holder may grant them): use a context with those rights (--context)",
			verb, what, err)
	}
	return fmt.Errorf("%s %s in the child: %w: check that the child's apiserver is healthy and serves the agent chart's kinds, then run the command again", verb, what, err)
}

// waitRegistered waits for the agent's ClusterRegistrationRequest to be
// approved, hinting at `approve` when the hub leaves it Pending.
func (j *joiner) waitRegistered(ctx context.Context) (string, error) {
	name := clusterv1beta1.NamePrefix + j.id
	seen, hinted := false, false
	start := j.now()
	err := j.poll(ctx, func(ctx context.Context) (bool, error) {
		crr, err := j.clients.parentClusternet.ClustersV1beta1().ClusterRegistrationRequests().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, inParent("get", "clusterregistrationrequests", "", err)
		}
		seen = true
		result := clusterv1beta1.RequestPending
		if crr.Status.Result != nil {
			result = *crr.Status.Result
		}
		switch result {
		case clusterv1beta1.RequestApproved:
			return true, nil
		case clusterv1beta1.RequestDenied, clusterv1beta1.RequestFailed:
			return false, fmt.Errorf("the hub answered ClusterRegistrationRequest %s with %s: %s", name, result, crr.Status.ErrorMessage)
		}
		if !hinted && j.now().Sub(start) > 5*time.Second {
			hinted = true
			j.progress.note("Waiting for approval: the hub approves registrations by hand; in the parent run: kubectl clusternet approve %s", j.id)
		}
		return false, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		if !seen {
			return "", fmt.Errorf("the agent did not ask to register within %s (no ClusterRegistrationRequest %s in the parent): the child's pods may not reach the parent at %s (pass --parent-url with an address they reach), or the agent does not run: read its log in the child (kubectl -n %s logs deploy/clusternet-agent)%s",
				j.Timeout, name, j.ParentURL, charts.Namespace, j.podSummary(ctx))
		}
		return "", &pendingError{fmt.Errorf("ClusterRegistrationRequest %s is still Pending after %s: approve it in the parent (kubectl clusternet approve %s), then run join again", name, j.Timeout, j.id)}
	}
	if err != nil {
		return "", err
	}
	// The agent holds its own credentials now: the token only widens who
	// may register.
	j.deleteToken(ctx)
	return fmt.Sprintf("Registered: ClusterRegistrationRequest %s approved", name), nil
}

// waitReady waits for the ManagedCluster to be Ready with its tunnel up,
// proven by a request through the parent's proxy.
func (j *joiner) waitReady(ctx context.Context) (string, error) {
	var reason, version string
	err := j.poll(ctx, func(ctx context.Context) (bool, error) {
		mc, err := findManagedCluster(ctx, j.clients.parentClusternet, j.id)
		switch {
		case apierrors.IsForbidden(err):
			return false, err
		case err != nil:
			// A blip of the parent's apiserver or hub: the next round tells.
			reason = err.Error()
			return false, nil
		case mc == nil:
			reason = "no ManagedCluster yet"
			return false, nil
		}
		j.managed = toCluster(mc)
		if reason = notReady(mc); reason != "" {
			return false, nil
		}
		version, err = childVersionThroughParent(ctx, j.clients, j.id)
		if err != nil {
			reason = fmt.Sprintf("GET /version through the parent's proxy fails: %v", err)
			return false, nil
		}
		return true, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return "", fmt.Errorf("cluster %s is not Ready with a live tunnel after %s: %s: read the agent's log in the child (kubectl -n %s logs deploy/clusternet-agent) and the hub's",
			j.id, j.Timeout, reason, charts.Namespace)
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("ManagedCluster %s/%s Ready, tunnel up: /version through the parent answers %s", j.managed.Namespace, j.managed.Name, version), nil
}

// notReady says what keeps mc from Ready with a tunnel; "" when nothing.
func notReady(mc *clusterv1beta1.ManagedCluster) string {
	ready := meta.FindStatusCondition(mc.Status.Conditions, clusterv1beta1.ClusterReady)
	switch {
	case ready == nil:
		return "no heartbeat yet (no Ready condition)"
	case ready.Status != metav1.ConditionTrue:
		return fmt.Sprintf("Ready is %s (%s: %s)", ready.Status, ready.Reason, ready.Message)
	case !mc.Status.UseSocket:
		return "the agent holds no tunnel to the hub (status.useSocket is false)"
	}
	return ""
}

func childVersionThroughParent(ctx context.Context, c *fleetClients, id string) (string, error) {
	raw, err := c.parentKube.CoreV1().RESTClient().Get().AbsPath(ProxyPath(id), "version").DoRaw(ctx)
	if err != nil {
		return "", err
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.GitVersion == "" {
		return "", fmt.Errorf("not a /version answer: %.200s", raw)
	}
	return v.GitVersion, nil
}

// poll runs cond every pollInterval until it is done, fails, or the wait
// is over; each round first looks for an agent that cannot start.
func (j *joiner) poll(ctx context.Context, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithDeadline(ctx, j.waitUntil)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if err := agentPodProblem(ctx, j.clients); err != nil {
			return false, err
		}
		return cond(ctx)
	})
}

// imagePullReasons are the waiting reasons of a container whose image the
// node cannot pull.
var imagePullReasons = []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}

// agentPodProblem is an agent pod that cannot run, by its container
// statuses or its events; nil when none (or the pods cannot be read).
func agentPodProblem(ctx context.Context, c *fleetClients) error {
	pods, err := c.childKube.CoreV1().Pods(charts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: agentPodSelector})
	if err != nil {
		return nil
	}
	for _, pod := range pods.Items {
		for _, cs := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
			if w := cs.State.Waiting; w != nil {
				if err := waitingProblem(pod.Name, cs.Image, w.Reason, w.Message); err != nil {
					return err
				}
			}
		}
		if err := podEventProblem(ctx, c, &pod); err != nil {
			return err
		}
	}
	return nil
}

func waitingProblem(pod, image, reason, message string) error {
	switch {
	case slices.Contains(imagePullReasons, reason):
		return fmt.Errorf("the child cannot pull the agent image %q (pod %s: %s: %s): pass --agent-image with an image the child's nodes can pull, or let them reach its registry",
			image, pod, reason, message)
	case reason == "CrashLoopBackOff":
		return fmt.Errorf("the agent crashes (pod %s: %s): read why in the child: kubectl -n %s logs %s --previous", pod, message, charts.Namespace, pod)
	}
	return nil
}

// podEventProblem reads the kubelet's events of pod for a failed pull,
// which may come before the container status says so.
func podEventProblem(ctx context.Context, c *fleetClients, pod *corev1.Pod) error {
	events, err := c.childKube.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + pod.Name,
	})
	if err != nil {
		return nil
	}
	for _, ev := range events.Items {
		if ev.Type == corev1.EventTypeWarning && (ev.Reason == "Failed" || ev.Reason == "BackOff") &&
			(strings.Contains(ev.Message, "ErrImagePull") || strings.Contains(ev.Message, "pull image") || strings.Contains(ev.Message, "pulling image")) {
			image := ""
			if len(pod.Spec.Containers) > 0 {
				image = pod.Spec.Containers[0].Image
			}
			return waitingProblem(pod.Name, image, "ErrImagePull", ev.Message)
		}
	}
	return nil
}

// podSummary describes the agent's pods for a timeout message.
func (j *joiner) podSummary(ctx context.Context) string {
	pods, err := j.clients.childKube.CoreV1().Pods(charts.Namespace).List(context.WithoutCancel(ctx), metav1.ListOptions{LabelSelector: agentPodSelector})
	if err != nil {
		return ""
	}
	if len(pods.Items) == 0 {
		return "; the child has no agent pod (is its controller manager running? kubectl -n " + charts.Namespace + " describe deployment clusternet-agent)"
	}
	var parts []string
	for _, p := range pods.Items {
		parts = append(parts, fmt.Sprintf("%s %s", p.Name, p.Status.Phase))
	}
	return "; agent pods: " + strings.Join(parts, ", ")
}

// pendingError is a registration the hub still has Pending: the agent
// keeps asking with join's token, so approving it still joins the cluster.
type pendingError struct{ error }

func (e *pendingError) Unwrap() error { return e.error }

// failed finishes a join that failed with err (nil: none): the token join
// made goes, unless the registration is Pending (approving it still
// joins the agent, which needs the token until then); what join installed
// stays for `unjoin` to remove, as the agent may be halfway registered.
func (j *joiner) failed(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var pending *pendingError
	if j.createdToken && errors.As(err, &pending) {
		err = fmt.Errorf("%w (join's bootstrap token %s is kept until it expires in at most %s: the agent still registers with it once approved)", err, j.token.ID, joinTokenTTL)
	} else {
		j.deleteToken(context.WithoutCancel(ctx))
	}
	if j.installed {
		return fmt.Errorf("%w (`kubectl clusternet unjoin` removes what join installed)", err)
	}
	return err
}

// deleteToken deletes the token join made, once.
func (j *joiner) deleteToken(ctx context.Context) {
	if !j.createdToken {
		return
	}
	err := j.clients.parentKube.CoreV1().Secrets(bootstraptoken.Namespace).Delete(ctx, j.token.SecretName(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		j.progress.note("Warning: the bootstrap token is left (it expires in %s): delete it in the parent: kubectl -n %s delete secret %s (%v)",
			joinTokenTTL, bootstraptoken.Namespace, j.token.SecretName(), err)
		return
	}
	j.createdToken = false
}
