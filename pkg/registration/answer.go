package registration

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clientv1beta1 "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/typed/clusters/v1beta1"
)

// AnswerPoll paces an agent's reads of its own ClusterRegistrationRequest
// while it waits for the hub's answer: the first read comes soon (an idle
// hub answers in a fraction of a second), later ones back off to about one
// every 2 s, jittered so that agents installed at once do not read in step.
//
// A watch would answer sooner, but the shared bootstrap token may only get
// requests by name (deploy/hub/rbac.yaml): watching one by name needs list
// and watch, and RBAC cannot hold those to one name per holder of a shared
// token, so every holder could list every cluster's request. Polling at
// this pace is the cheaper safe choice: a thousand waiting agents read
// about 450 times a second in all, where a 200 ms cap made it 5,000, and
// those reads queue in the bootstrap token's small priority level
// (deploy/hub/flowcontrol.yaml) ahead of the requests that register.
//
// Each call returns a fresh Backoff: Step changes it. Steps never run out;
// the caller bounds the wait.
func AnswerPoll() wait.Backoff {
	return wait.Backoff{Duration: 100 * time.Millisecond, Factor: 1.5, Jitter: 0.25, Steps: math.MaxInt32, Cap: 2 * time.Second}
}

// AnswerWait is how long AwaitAnswer waits for the hub before it gives up,
// so that the agent begins its registration again (its request is made
// again if it went away meanwhile).
const AnswerWait = time.Minute

// cachedRead reads from the parent apiserver's watch cache: a read with no
// resourceVersion goes to etcd and decodes the object again each time. A
// waiting agent needs no newer copy than the cache's, which is moments
// behind at most, and it reads again soon anyway.
var cachedRead = metav1.GetOptions{ResourceVersion: "0"}

// notFoundGrace is how long a request may be missing from the cache before
// AwaitAnswer asks etcd: the cache follows etcd within milliseconds, so a
// request still missing after this was deleted (or the cache is stuck).
const notFoundGrace = 3 * time.Second

// AwaitAnswer reads the ClusterRegistrationRequest name at AnswerPoll's
// pace until the hub approved it with a sealed token, which it returns, or
// denied it, for at most AnswerWait. pending, if not nil, is told of every
// read that found the request still unanswered.
//
// The reads come from the parent's cache (cachedRead). A request created a
// moment ago may not be there yet, so not finding it is waited out for
// notFoundGrace; then one read from etcd tells a deleted request (an error
// at once: the agent makes it again) from a cache that is behind (the wait
// goes on reading from etcd).
func AwaitAnswer(ctx context.Context, crrs clientv1beta1.ClusterRegistrationRequestInterface, name string,
	pending func(*clusterv1beta1.ClusterRegistrationRequest)) (*clusterv1beta1.ClusterRegistrationRequest, error) {
	return awaitAnswer(ctx, crrs, name, pending, AnswerWait, notFoundGrace)
}

func awaitAnswer(ctx context.Context, crrs clientv1beta1.ClusterRegistrationRequestInterface, name string,
	pending func(*clusterv1beta1.ClusterRegistrationRequest), patience, grace time.Duration) (*clusterv1beta1.ClusterRegistrationRequest, error) {
	poll := AnswerPoll()
	start := time.Now()
	deadline := start.Add(patience)
	read := cachedRead
	lastWord := "" // the hub's last status.errorMessage on a pending request
	for {
		got, err := crrs.Get(ctx, name, read)
		switch {
		case apierrors.IsNotFound(err) && read.ResourceVersion == "":
			return nil, errors.New("it was deleted in the parent while the agent waited for the hub's answer; the agent makes it again")
		case apierrors.IsNotFound(err):
			if time.Since(start) >= grace {
				read = metav1.GetOptions{} // deleted, or the cache is behind: etcd says which
				continue
			}
		case err != nil:
			return nil, fmt.Errorf("reading it: %w", err)
		case got.Status.Result != nil && *got.Status.Result == clusterv1beta1.RequestDenied:
			return nil, fmt.Errorf("the hub denied it: %s", got.Status.ErrorMessage)
		case got.Status.Result != nil && *got.Status.Result == clusterv1beta1.RequestApproved && len(got.Status.SealedToken) > 0:
			return got, nil
		default:
			lastWord = got.Status.ErrorMessage
			if pending != nil {
				pending(got)
			}
		}
		if time.Now().After(deadline) {
			if lastWord != "" {
				return nil, fmt.Errorf("not answered within %s; the hub said: %s", patience, lastWord)
			}
			return nil, fmt.Errorf("not answered within %s: is clusternet-hub running in the parent?", patience)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll.Step()):
		}
	}
}
