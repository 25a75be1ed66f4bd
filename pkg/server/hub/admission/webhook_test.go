package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// refuseTeamB refuses every feed in namespace team-b, and records who asked.
type refuseTeamB struct{ users []string }

func (r *refuseTeamB) Check(_ context.Context, user authenticationv1.UserInfo, sub *appsv1alpha1.Subscription) (field.ErrorList, error) {
	r.users = append(r.users, user.Username)
	var errs field.ErrorList
	for i, f := range sub.Spec.Feeds {
		if f.Namespace == "team-b" {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "feeds").Index(i), "no"))
		}
	}
	return errs, nil
}

func review(op admissionv1.Operation, resource, sub string, obj any) []byte {
	raw, _ := json.Marshal(obj)
	b, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID("req-1"), Operation: op, Namespace: "team-a", Name: "s",
			Resource:    metav1.GroupVersionResource{Group: appsv1alpha1.GroupName, Version: "v1alpha1", Resource: resource},
			SubResource: sub, UserInfo: authenticationv1.UserInfo{Username: "alice"},
			Object: runtime.RawExtension{Raw: raw},
		},
	})
	return b
}

func TestWebhook(t *testing.T) {
	teamB := subscription(named("v1", "Secret", "team-a", "ok"), named("v1", "Secret", "team-b", "db"))
	for _, tc := range []struct {
		name   string
		method string
		body   []byte
		// code is the HTTP status; resp, the AdmissionResponse when 200.
		code    int
		resp    *admissionv1.AdmissionResponse
		checked []string
	}{{
		name: "a create naming what its author may not read is refused, naming the feed",
		body: review(admissionv1.Create, "subscriptions", "", teamB), code: http.StatusOK, checked: []string{"alice"},
		resp: &admissionv1.AdmissionResponse{UID: "req-1", Result: &metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
			Message: "spec.feeds[1]: Forbidden: no",
			Details: &metav1.StatusDetails{Group: appsv1alpha1.GroupName, Kind: "Subscription", Name: "s",
				Causes: []metav1.StatusCause{{Type: metav1.CauseType(field.ErrorTypeForbidden), Message: "Forbidden: no", Field: "spec.feeds[1]"}}}}},
	}, {
		name: "an update is checked whole, with the updater's identity",
		body: review(admissionv1.Update, "subscriptions", "", teamB), code: http.StatusOK, checked: []string{"alice"},
		resp: &admissionv1.AdmissionResponse{UID: "req-1", Result: &metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
			Message: "spec.feeds[1]: Forbidden: no",
			Details: &metav1.StatusDetails{Group: appsv1alpha1.GroupName, Kind: "Subscription", Name: "s",
				Causes: []metav1.StatusCause{{Type: metav1.CauseType(field.ErrorTypeForbidden), Message: "Forbidden: no", Field: "spec.feeds[1]"}}}}},
	}, {
		name: "a create naming only what its author may read is allowed",
		body: review(admissionv1.Create, "subscriptions", "", subscription(named("v1", "Secret", "team-a", "ok"))), code: http.StatusOK, checked: []string{"alice"},
		resp: &admissionv1.AdmissionResponse{UID: "req-1", Allowed: true},
	}, {
		name: "a delete is not checked",
		body: review(admissionv1.Delete, "subscriptions", "", nil), code: http.StatusOK,
		resp: &admissionv1.AdmissionResponse{UID: "req-1", Allowed: true},
	}, {
		name: "anything but Subscriptions is refused as a misconfiguration",
		body: review(admissionv1.Create, "subscriptions", "status", teamB), code: http.StatusOK,
		resp: &admissionv1.AdmissionResponse{UID: "req-1", Result: &metav1.Status{Status: metav1.StatusFailure, Code: 500, Reason: metav1.StatusReasonInternalError,
			Message: `the Subscription webhook got CREATE "subscriptions.apps.clusternet.io/status": it checks only subscriptions.apps.clusternet.io: fix the rules of the ValidatingWebhookConfiguration (deploy/hub/webhook.yaml)`}},
	}, {
		name: "a body that is not an AdmissionReview is a bad request",
		body: []byte("{"), code: http.StatusBadRequest,
	}, {
		name: "GET is not served", method: http.MethodGet, code: http.StatusMethodNotAllowed,
	}, {
		name: "a body beyond the bound is refused",
		body: bytes.Repeat([]byte(" "), maxReviewBytes+1), code: http.StatusRequestEntityTooLarge,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			checker := &refuseTeamB{}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			rec := httptest.NewRecorder()
			(&SubscriptionWebhook{Checker: checker}).ServeHTTP(rec, httptest.NewRequest(method, SubscriptionsPath, bytes.NewReader(tc.body)))
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.code, body)
			}
			if diff := cmp.Diff(tc.checked, checker.users); diff != "" {
				t.Errorf("checked as (-want +got):\n%s", diff)
			}
			if tc.code != http.StatusOK {
				return
			}
			var got admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.APIVersion != "admission.k8s.io/v1" || got.Kind != "AdmissionReview" {
				t.Errorf("answered %s %s, want admission.k8s.io/v1 AdmissionReview", got.APIVersion, got.Kind)
			}
			if diff := cmp.Diff(tc.resp, got.Response); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}
