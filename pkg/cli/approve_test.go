package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clienttesting "k8s.io/client-go/testing"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

const id3 = "7f3c2b1a-0e9d-4c8b-a7f6-5e4d3c2b1a09"

// request builds a ClusterRegistrationRequest for cluster id as its agent
// names it, answered with result (empty: no answer yet).
func request(id string, result clusterv1beta1.ApprovedResult, mods ...func(*clusterv1beta1.ClusterRegistrationRequest)) *clusterv1beta1.ClusterRegistrationRequest {
	crr := &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "clusternet-" + id},
		Spec:       clusterv1beta1.ClusterRegistrationRequestSpec{ClusterID: types.UID(id), ClusterName: "edge"},
	}
	if result != "" {
		crr.Status.Result = &result
	}
	for _, m := range mods {
		m(crr)
	}
	return crr
}

func provisioned(ns string) func(*clusterv1beta1.ClusterRegistrationRequest) {
	return func(crr *clusterv1beta1.ClusterRegistrationRequest) {
		crr.Status.DedicatedNamespace, crr.Status.ManagedClusterName, crr.Status.SealedToken = ns, "edge", []byte("sealed-agent-token")
	}
}

func withMessage(msg string) func(*clusterv1beta1.ClusterRegistrationRequest) {
	return func(crr *clusterv1beta1.ClusterRegistrationRequest) { crr.Status.ErrorMessage = msg }
}

// runReview runs approve or deny as a whole command against cs.
func runReview(t *testing.T, result clusterv1beta1.ApprovedResult, cs versioned.Interface, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	o := NewReviewOptions(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, result)
	o.newClient = func() (versioned.Interface, error) { return cs, nil }
	var cmd *cobra.Command
	if result == clusterv1beta1.RequestApproved {
		cmd = newCmdApprove(o, nil)
	} else {
		cmd = newCmdDeny(o, nil)
	}
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceErrors = true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// answers are the stored results and messages, by request name, read from
// the fake's store (not through the API, which a test may forbid).
func answers(t *testing.T, cs *fake.Clientset) map[string]string {
	t.Helper()
	objs, err := cs.Tracker().List(clusterv1beta1.SchemeGroupVersion.WithResource("clusterregistrationrequests"),
		clusterv1beta1.SchemeGroupVersion.WithKind("ClusterRegistrationRequest"), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, crr := range objs.(*clusterv1beta1.ClusterRegistrationRequestList).Items {
		r := "<none>"
		if crr.Status.Result != nil {
			r = string(*crr.Status.Result)
		}
		if crr.Status.ErrorMessage != "" {
			r += ": " + crr.Status.ErrorMessage
		}
		out[crr.Name] = r
	}
	return out
}

func statusUpdates(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func TestReview(t *testing.T) {
	const printed = "clusterregistrationrequest.clusters.clusternet.io/"
	tests := []struct {
		name        string
		result      clusterv1beta1.ApprovedResult
		objects     []runtime.Object
		args        []string
		wantOut     string
		wantErrOut  string
		wantAnswers map[string]string
		wantUpdates int
	}{
		{
			name:   "approve by name",
			result: clusterv1beta1.RequestApproved, objects: []runtime.Object{request(id1, ""), request(id2, "")},
			args:        []string{"clusternet-" + id1},
			wantOut:     printed + "clusternet-" + id1 + " approved\n",
			wantAnswers: map[string]string{"clusternet-" + id1: "Approved", "clusternet-" + id2: "<none>"},
			wantUpdates: 1,
		},
		{
			name:   "approve by cluster id, a Pending one, named twice",
			result: clusterv1beta1.RequestApproved, objects: []runtime.Object{request(id1, clusterv1beta1.RequestPending)},
			args:        []string{id1, "clusternet-" + id1},
			wantOut:     printed + "clusternet-" + id1 + " approved\n",
			wantAnswers: map[string]string{"clusternet-" + id1: "Approved"},
			wantUpdates: 1,
		},
		{
			name:   "approving clears the manual hub's waiting message",
			result: clusterv1beta1.RequestApproved,
			objects: []runtime.Object{request(id1, clusterv1beta1.RequestPending,
				withMessage("waiting for an admin: the hub runs with --registration-approval=manual"))},
			args:        []string{id1},
			wantOut:     printed + "clusternet-" + id1 + " approved\n",
			wantAnswers: map[string]string{"clusternet-" + id1: "Approved"},
			wantUpdates: 1,
		},
		{
			name:   "denying replaces the manual hub's waiting message with the reason",
			result: clusterv1beta1.RequestDenied,
			objects: []runtime.Object{request(id1, clusterv1beta1.RequestPending,
				withMessage("waiting for an admin: the hub runs with --registration-approval=manual"))},
			args:        []string{id1, "--reason", "not ours"},
			wantOut:     printed + "clusternet-" + id1 + " denied\n",
			wantAnswers: map[string]string{"clusternet-" + id1: "Denied: not ours"},
			wantUpdates: 1,
		},
		{
			name:   "approve --all answers only the unanswered, by name",
			result: clusterv1beta1.RequestApproved,
			objects: []runtime.Object{request(id2, ""), request(id1, clusterv1beta1.RequestPending),
				request(id3, clusterv1beta1.RequestDenied, withMessage("no"))},
			args:    []string{"--all"},
			wantOut: printed + "clusternet-" + id2 + " approved\n" + printed + "clusternet-" + id1 + " approved\n",
			wantAnswers: map[string]string{"clusternet-" + id1: "Approved", "clusternet-" + id2: "Approved",
				"clusternet-" + id3: "Denied: no"},
			wantUpdates: 2,
		},
		{
			name:        "approve --all with nothing pending",
			result:      clusterv1beta1.RequestApproved,
			objects:     []runtime.Object{request(id1, clusterv1beta1.RequestApproved, provisioned("clusternet-abcde"))},
			args:        []string{"--all"},
			wantErrOut:  "No pending cluster registration requests found.\n",
			wantAnswers: map[string]string{"clusternet-" + id1: "Approved"},
		},
		{
			name:        "approving an approved request changes nothing",
			result:      clusterv1beta1.RequestApproved,
			objects:     []runtime.Object{request(id1, clusterv1beta1.RequestApproved, provisioned("clusternet-abcde"))},
			args:        []string{id1},
			wantOut:     printed + "clusternet-" + id1 + " approved\n",
			wantAnswers: map[string]string{"clusternet-" + id1: "Approved"},
		},
		{
			name:        "the printed object is the answered one",
			result:      clusterv1beta1.RequestApproved,
			objects:     []runtime.Object{request(id1, "")},
			args:        []string{id1, "-o", "jsonpath={.kind} {.metadata.name} {.status.result}"},
			wantOut:     "ClusterRegistrationRequest clusternet-" + id1 + " Approved",
			wantAnswers: map[string]string{"clusternet-" + id1: "Approved"},
			wantUpdates: 1,
		},
		{
			name:        "deny with a reason",
			result:      clusterv1beta1.RequestDenied,
			objects:     []runtime.Object{request(id1, ""), request(id2, "")},
			args:        []string{id1, id2, "--reason", "unknown edge site"},
			wantOut:     printed + "clusternet-" + id1 + " denied\n" + printed + "clusternet-" + id2 + " denied\n",
			wantAnswers: map[string]string{"clusternet-" + id1: "Denied: unknown edge site", "clusternet-" + id2: "Denied: unknown edge site"},
			wantUpdates: 2,
		},
		{
			name:        "deny without a reason says who denied",
			result:      clusterv1beta1.RequestDenied,
			objects:     []runtime.Object{request(id1, "")},
			args:        []string{"--all"},
			wantOut:     printed + "clusternet-" + id1 + " denied\n",
			wantAnswers: map[string]string{"clusternet-" + id1: "Denied: denied by an administrator of the parent cluster"},
			wantUpdates: 1,
		},
		{
			name:        "denying a denied request keeps its reason",
			result:      clusterv1beta1.RequestDenied,
			objects:     []runtime.Object{request(id1, clusterv1beta1.RequestDenied, withMessage("first"))},
			args:        []string{id1, "--reason", "second"},
			wantOut:     printed + "clusternet-" + id1 + " denied\n",
			wantAnswers: map[string]string{"clusternet-" + id1: "Denied: first"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(tc.objects...)
			out, errOut, err := runReview(t, tc.result, cs, tc.args...)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.wantOut, out); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantErrOut, errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAnswers, answers(t, cs)); diff != "" {
				t.Errorf("stored answers (-want +got):\n%s", diff)
			}
			if got := statusUpdates(cs); got != tc.wantUpdates {
				t.Errorf("%d status updates, want %d", got, tc.wantUpdates)
			}
		})
	}
}

func forbidden(verb, resource, sub string) clienttesting.ReactionFunc {
	return func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != sub {
			return false, nil, nil
		}
		r := resource
		if sub != "" {
			r += "/" + sub
		}
		name := ""
		if n, ok := a.(interface{ GetName() string }); ok {
			name = n.GetName()
		}
		if u, ok := a.(clienttesting.UpdateAction); ok {
			name = u.GetObject().(metav1.Object).GetName()
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: clusterv1beta1.GroupName, Resource: resource}, name,
			errFromString(`User "alice" cannot `+verb+` resource "`+r+`" in API group "`+clusterv1beta1.GroupName+`" at the cluster scope`))
	}
}

type errFromString string

func (e errFromString) Error() string { return string(e) }

// TestReviewRefusals: every refusal changes nothing and says what to do.
func TestReviewRefusals(t *testing.T) {
	name1, name2 := "clusternet-"+id1, "clusternet-"+id2
	tests := []struct {
		name    string
		result  clusterv1beta1.ApprovedResult
		objects []runtime.Object
		react   func(*fake.Clientset)
		args    []string
		wantErr string
		// partOfErr: wantErr is a part of the error, whose rest another case checks.
		partOfErr bool
	}{
		{
			name: "no names", result: clusterv1beta1.RequestApproved,
			wantErr: "no request named: give one or more names (clusternet-<cluster-id>) or cluster ids, or --all; list them with `kubectl get clsrr`",
		},
		{
			name: "names and --all", result: clusterv1beta1.RequestDenied, args: []string{id1, "--all"},
			wantErr: `--all and names ["` + id1 + `"] both given: name requests, or use --all for every pending one, not both`,
		},
		{
			name: "unknown name", result: clusterv1beta1.RequestApproved, args: []string{"clusternet-nope"},
			wantErr: "clusterregistrationrequest \"clusternet-nope\" not found: list the requests and their cluster ids with `kubectl get clsrr`",
		},
		{
			name: "unknown cluster id", result: clusterv1beta1.RequestApproved, args: []string{id2},
			wantErr: `clusterregistrationrequest "` + name2 + `" (of cluster id "` + id2 + `") not found: list the requests and their cluster ids with ` + "`kubectl get clsrr`",
		},
		{
			name: "one unknown name among good ones approves none", result: clusterv1beta1.RequestApproved,
			objects: []runtime.Object{request(id1, "")},
			args:    []string{id1, id2, "clusternet-nope"},
			wantErr: "nothing was approved, because:\n" +
				`  - clusterregistrationrequest "` + name2 + `" (of cluster id "` + id2 + "\") not found: list the requests and their cluster ids with `kubectl get clsrr`\n" +
				"  - clusterregistrationrequest \"clusternet-nope\" not found: list the requests and their cluster ids with `kubectl get clsrr`",
		},
		{
			name: "approving a denied request", result: clusterv1beta1.RequestApproved,
			objects: []runtime.Object{request(id1, clusterv1beta1.RequestDenied, withMessage("unknown site")), request(id2, "")},
			args:    []string{id2, id1},
			wantErr: `clusterregistrationrequest "` + name1 + `" is already Denied (reason: unknown site) and cannot be approved: ` +
				"delete it with `kubectl delete clsrr " + name1 + "`, and the cluster's agent will create a new request at its next attempt",
		},
		{
			name: "denying an approved request", result: clusterv1beta1.RequestDenied,
			objects: []runtime.Object{request(id1, clusterv1beta1.RequestApproved, provisioned("clusternet-abcde"))},
			args:    []string{id1},
			wantErr: `clusterregistrationrequest "` + name1 + `" is already Approved and cannot be denied: denying it now would not revoke ` +
				"the token the cluster already holds, which stays valid until it expires; to remove the cluster, delete its dedicated namespace \"clusternet-abcde\" " +
				"(`kubectl delete namespace clusternet-abcde`), which holds its ManagedCluster and its agent's ServiceAccount, so the agent's parent token stops working at once",
		},
		{
			name: "denying an approved request the hub has not provisioned yet", result: clusterv1beta1.RequestDenied,
			objects:   []runtime.Object{request(id1, clusterv1beta1.RequestApproved)},
			args:      []string{id1},
			wantErr:   "delete its dedicated namespace (find it with `kubectl get namespace -l clusters.clusternet.io/cluster-id=" + id1 + "`), which holds",
			partOfErr: true,
		},
		{
			name: "no right to update status", result: clusterv1beta1.RequestApproved,
			objects: []runtime.Object{request(id1, "")},
			react: func(cs *fake.Clientset) {
				cs.PrependReactor("update", "clusterregistrationrequests", forbidden("update", "clusterregistrationrequests", "status"))
			},
			args: []string{id1},
			wantErr: `approving clusterregistrationrequest "` + name1 + `": you lack "update" on "clusterregistrationrequests/status" (API group clusters.clusternet.io) in the parent: ` +
				"ask a parent admin for it (check with `kubectl auth can-i update clusterregistrationrequests.clusters.clusternet.io --subresource=status`): " +
				`clusterregistrationrequests.clusters.clusternet.io "` + name1 + `" is forbidden: User "alice" cannot update resource "clusterregistrationrequests/status" in API group "clusters.clusternet.io" at the cluster scope`,
		},
		{
			name: "no right to read requests", result: clusterv1beta1.RequestDenied,
			objects: []runtime.Object{request(id1, "")},
			react: func(cs *fake.Clientset) {
				cs.PrependReactor("get", "clusterregistrationrequests", forbidden("get", "clusterregistrationrequests", ""))
			},
			args: []string{"clusternet-" + id1},
			wantErr: `reading clusterregistrationrequest "` + name1 + `": you lack "get" on "clusterregistrationrequests" (API group clusters.clusternet.io) in the parent; ` +
				`denying also needs "update" on "clusterregistrationrequests/status" (API group clusters.clusternet.io): ask a parent admin for both: ` +
				`clusterregistrationrequests.clusters.clusternet.io "` + name1 + `" is forbidden: User "alice" cannot get resource "clusterregistrationrequests" in API group "clusters.clusternet.io" at the cluster scope`,
		},
		{
			name: "no right to list for --all", result: clusterv1beta1.RequestApproved,
			objects: []runtime.Object{request(id1, "")},
			react: func(cs *fake.Clientset) {
				cs.PrependReactor("list", "clusterregistrationrequests", forbidden("list", "clusterregistrationrequests", ""))
			},
			args: []string{"--all"},
			wantErr: `listing cluster registration requests for --all: you lack "list" on "clusterregistrationrequests" (API group clusters.clusternet.io) in the parent: ask a parent admin for it, or name the requests instead: ` +
				`clusterregistrationrequests.clusters.clusternet.io is forbidden: User "alice" cannot list resource "clusterregistrationrequests" in API group "clusters.clusternet.io" at the cluster scope`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(tc.objects...)
			if tc.react != nil {
				tc.react(cs)
			}
			before := answers(t, cs)
			out, _, err := runReview(t, tc.result, cs, tc.args...)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			if tc.partOfErr {
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %q, want one containing %q", err, tc.wantErr)
				}
			} else if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if strings.Contains(out, "clusterregistrationrequest.") {
				t.Errorf("stdout = %q, want no answer printed: nothing was answered", out)
			}
			if diff := cmp.Diff(before, answers(t, cs)); diff != "" {
				t.Errorf("a refused command changed answers (-before +after):\n%s", diff)
			}
		})
	}
}

// TestReviewRetriesAConflictOnce: the hub or another admin may write the
// request between the read and the update.
func TestReviewRetriesAConflictOnce(t *testing.T) {
	name1 := "clusternet-" + id1
	conflict := apierrors.NewConflict(schema.GroupResource{Group: clusterv1beta1.GroupName, Resource: "clusterregistrationrequests"}, name1, errFromString("the object has been modified"))
	tests := []struct {
		name string
		// conflicts is how many status updates fail with a conflict; meanwhile
		// (the other writer) runs at the first.
		conflicts   int
		meanwhile   func(*clusterv1beta1.ClusterRegistrationRequest)
		wantOut     string
		wantErr     string
		wantAnswer  string
		wantUpdates int
	}{
		{
			name: "retried on a fresh read", conflicts: 1,
			meanwhile:  func(crr *clusterv1beta1.ClusterRegistrationRequest) { crr.Labels = map[string]string{"touched": "yes"} },
			wantOut:    "clusterregistrationrequest.clusters.clusternet.io/" + name1 + " approved\n",
			wantAnswer: "Approved", wantUpdates: 2,
		},
		{
			name: "another admin approved it meanwhile", conflicts: 1,
			meanwhile: func(crr *clusterv1beta1.ClusterRegistrationRequest) {
				crr.Status.Result = ptrTo(clusterv1beta1.RequestApproved)
			},
			wantOut:    "clusterregistrationrequest.clusters.clusternet.io/" + name1 + " approved\n",
			wantAnswer: "Approved", wantUpdates: 1,
		},
		{
			name: "another admin denied it meanwhile", conflicts: 1,
			meanwhile: func(crr *clusterv1beta1.ClusterRegistrationRequest) {
				crr.Status.Result, crr.Status.ErrorMessage = ptrTo(clusterv1beta1.RequestDenied), "not ours"
			},
			wantErr:    `clusterregistrationrequest "` + name1 + `" is already Denied (reason: not ours) and cannot be approved`,
			wantAnswer: "Denied: not ours", wantUpdates: 1,
		},
		{
			name: "a second conflict is not retried", conflicts: 2,
			meanwhile:  func(*clusterv1beta1.ClusterRegistrationRequest) {},
			wantErr:    `approving clusterregistrationrequest "` + name1 + `": it changed twice while being written; run the command again: `,
			wantAnswer: "<none>", wantUpdates: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(request(id1, ""))
			calls := 0
			cs.PrependReactor("update", "clusterregistrationrequests", func(a clienttesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "status" {
					return false, nil, nil
				}
				calls++
				if calls == 1 {
					crr, err := cs.Tracker().Get(clusterv1beta1.SchemeGroupVersion.WithResource("clusterregistrationrequests"), "", name1)
					if err != nil {
						return true, nil, err
					}
					changed := crr.(*clusterv1beta1.ClusterRegistrationRequest).DeepCopy()
					tc.meanwhile(changed)
					if err := cs.Tracker().Update(clusterv1beta1.SchemeGroupVersion.WithResource("clusterregistrationrequests"), changed, ""); err != nil {
						return true, nil, err
					}
				}
				if calls <= tc.conflicts {
					return true, nil, conflict
				}
				return false, nil, nil
			})
			out, _, err := runReview(t, clusterv1beta1.RequestApproved, cs, id1)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one starting with %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantOut, out); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if got := answers(t, cs)[name1]; got != tc.wantAnswer {
				t.Errorf("stored answer %q, want %q", got, tc.wantAnswer)
			}
			if got := statusUpdates(cs); got != tc.wantUpdates {
				t.Errorf("%d status updates, want %d", got, tc.wantUpdates)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestReviewCommandsInRootHelp: approve and deny are reached from the
// plugin's root, in their own group, and flag mistakes print usage.
func TestReviewCommandsInRootHelp(t *testing.T) {
	out, _, err := runCmd(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	want := "Registering child clusters (`create token` makes a bootstrap token for them):\n" +
		"  approve         Approve cluster registration requests\n" +
		"  deny            Deny cluster registration requests\n"
	if !strings.Contains(out, want) {
		t.Errorf("root help lacks\n%s\ngot:\n%s", want, out)
	}
	out, _, err = runCmd(t, "approve", "--server", "https://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "error: no request named") {
		t.Fatalf("error = %v, want the no-names refusal", err)
	}
	if !strings.Contains(out, "Usage:\n  kubectl clusternet approve (NAME | CLUSTER-ID)... | --all [options]") {
		t.Errorf("a missing argument should print usage, got:\n%s", out)
	}
}
