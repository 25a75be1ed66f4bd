package main

import (
	"context"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// exemptTunnels puts the agents' tunnel requests (a GET of
// sockets/<cluster-id> in proxies.clusternet.io, upgraded to a websocket)
// in the exempt priority level of the parent's API Priority and Fairness.
// The apiserver does not count them as long-running (only watches and the
// proxy, exec, attach, log and portforward subresources are), so without
// this each open tunnel holds a seat of workload-low for as long as it
// lives: a few hundred tunnels hold them all, and every other request of
// any service account (the agents' heartbeats among them) queues behind
// them and times out. docs/scale.md says what the real fix is.
func exemptTunnels(ctx context.Context, kube kubernetes.Interface) error {
	fs := &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: "clusternet-tunnels"},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "exempt"},
			MatchingPrecedence:         400,
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindGroup, Group: &flowcontrolv1.GroupSubject{Name: "system:serviceaccounts"}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{Verbs: []string{"get"}, APIGroups: []string{"proxies.clusternet.io"},
					Resources: []string{"sockets"}, ClusterScope: true}},
			}},
		},
	}
	_, err := kube.FlowcontrolV1().FlowSchemas().Create(ctx, fs, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
