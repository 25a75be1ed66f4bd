package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/cmd/logs"
	"k8s.io/kubectl/pkg/scheme"
)

// clusterLogs reads the logs in one cluster into out. sem bounds the
// clusters asked at once: it is held while the object is looked up, and
// while the logs are read unless they are followed (followed streams last
// until interrupted, and every cluster's must run at once).
func (o *LogsOptions) clusterLogs(ctx context.Context, c Cluster, sem chan struct{}, out, errOut io.Writer) error {
	sem <- struct{}{}
	held := true
	release := func() {
		if held {
			held = false
			<-sem
		}
	}
	defer release()
	requests, err := o.requests(c)
	if err != nil {
		return explainChildRead(err)
	}
	if o.kubectl.Follow {
		release()
	}
	return o.consume(ctx, c, requests, out, errOut)
}

// requests finds the object in the cluster as kubectl logs finds it, and
// has kubectl's polymorphic helpers pick its pods and containers.
func (o *LogsOptions) requests(c Cluster) (map[corev1.ObjectReference]rest.ResponseWrapper, error) {
	k := o.kubectl
	getter := o.getterFor(c)
	b := resource.NewBuilder(getter).
		WithScheme(scheme.Scheme, scheme.Scheme.PrioritizedVersionsAllGroups()...).
		NamespaceParam(o.namespace).DefaultNamespace().
		SingleResourceType()
	if k.ResourceArg != "" {
		b.ResourceNames("pods", k.ResourceArg)
	}
	if k.Selector != "" {
		b.ResourceTypes("pods").LabelSelectorParam(k.Selector)
	}
	infos, err := b.Do().Infos()
	if err != nil {
		if apierrors.IsNotFound(err) && !namespaceNotFound(err) {
			return nil, fmt.Errorf("%w in namespace %q", err, o.namespace)
		}
		return nil, err
	}
	if len(infos) != 1 {
		return nil, fmt.Errorf("%q names %d objects, want one", k.ResourceArg, len(infos))
	}
	obj := infos[0].Object
	if list, ok := obj.(*corev1.PodList); ok && len(list.Items) == 0 {
		return nil, fmt.Errorf("no pod matches -l %q in namespace %q", k.Selector, o.namespace)
	}
	var requests map[corev1.ObjectReference]rest.ResponseWrapper
	if k.AllPods {
		requests, err = k.AllPodLogsForObject(getter, obj, k.Options, k.GetPodTimeout, k.AllContainers)
	} else {
		requests, err = k.LogsForObject(getter, obj, k.Options, k.GetPodTimeout, k.AllContainers)
	}
	if err != nil {
		return nil, err
	}
	if k.Follow && len(requests) > k.MaxFollowConcurrency {
		return nil, fmt.Errorf("following %d log streams here, but --max-log-requests is %d: raise it, or narrow what you follow",
			len(requests), k.MaxFollowConcurrency)
	}
	return requests, nil
}

// namespaceNotFound says whether err is about the namespace itself: the
// builder says so when a namespace other than default is missing.
func namespaceNotFound(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Kind == "namespaces"
}

// explainChildRead words an error of a child: what was not found, or that
// the caller was refused, and who decides.
func explainChildRead(err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%w (the child's RBAC decides what your parent user, as the hub forwards it, may read there)", err)
	}
	return err
}

// source is one log stream: a container of a pod.
type source struct {
	ref     corev1.ObjectReference
	request rest.ResponseWrapper
}

// consume reads the cluster's streams into out: followed streams at once,
// others one after the other, in the order of pod and container names.
func (o *LogsOptions) consume(ctx context.Context, c Cluster, requests map[corev1.ObjectReference]rest.ResponseWrapper, out, errOut io.Writer) error {
	sources := make([]source, 0, len(requests))
	for ref, req := range requests {
		sources = append(sources, source{ref: ref, request: req})
	}
	slices.SortFunc(sources, func(a, b source) int {
		return strings.Compare(a.ref.Namespace+"/"+a.ref.Name+"/"+a.ref.FieldPath, b.ref.Namespace+"/"+b.ref.Name+"/"+b.ref.FieldPath)
	})
	read := func(s source) error {
		w := out
		if o.kubectl.Prefix {
			w = &prefixWriter{prefix: []byte(prefixOf(c, s.ref)), w: out}
		}
		err := logs.DefaultConsumeRequest(ctx, s.request, w)
		switch {
		case err == nil || ctx.Err() != nil:
			return nil
		case o.kubectl.IgnoreLogErrors:
			_, _ = fmt.Fprintf(errOut, "error: cluster %s: pod %s: %s\n", c, s.ref.Name, explainChildRead(err))
			return nil
		default:
			return fmt.Errorf("pod %s: %w", s.ref.Name, explainChildRead(err))
		}
	}
	if !o.kubectl.Follow {
		for _, s := range sources {
			if err := read(s); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(sources))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = read(s)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// containerInFieldPath finds the container a reference's field path names
// (spec.containers{nginx}), as kubectl logs --prefix does.
var containerInFieldPath = regexp.MustCompile(`spec\.(?:initContainers|containers|ephemeralContainers)\{(.+)\}`)

// prefixOf is "[cluster/pod/container] ".
func prefixOf(c Cluster, ref corev1.ObjectReference) string {
	container := ""
	if m := containerInFieldPath.FindStringSubmatch(ref.FieldPath); len(m) == 2 {
		container = m[1]
	}
	return fmt.Sprintf("[%s/%s/%s] ", c, ref.Name, container)
}

// prefixWriter puts prefix before each write: kubectl's consumer writes
// one line at a time.
type prefixWriter struct {
	prefix []byte
	w      io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if _, err := p.w.Write(append(slices.Clip(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// lineWriter writes whole lines to w, one write at a time, so that the
// lines of streams read at once never mix; a last line without a newline
// gets one.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	line := b
	if !bytes.HasSuffix(b, []byte("\n")) {
		line = append(slices.Clip(b), '\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(line); err != nil {
		return 0, err
	}
	return len(b), nil
}
