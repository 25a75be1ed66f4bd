package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// SubscriptionsPath is where the hub serves the Subscription webhook
// (deploy/hub/webhook.yaml).
const SubscriptionsPath = "/validate/subscriptions"

// maxReviewBytes bounds an AdmissionReview's body: it carries the object and,
// on update, the old object, each at most the parent's request limit (3 MiB).
const maxReviewBytes = 8 << 20

// Checker checks one Subscription written by user; SubscriptionChecker is one.
type Checker interface {
	Check(ctx context.Context, user authenticationv1.UserInfo, sub *appsv1alpha1.Subscription) (field.ErrorList, error)
}

var subscriptionResource = schema.GroupResource{Group: appsv1alpha1.GroupName, Resource: "subscriptions"}

// SubscriptionWebhook serves AdmissionReviews (admission.k8s.io/v1) of
// Subscription creates and updates: it refuses a Subscription whose author
// (the request's userInfo) may not read everything its feeds name. On an
// update the whole new spec is checked with the updater's identity: whoever
// rewrites a Subscription must be able to read every feed it keeps, or they
// could send a feed someone else added to clusters they choose.
type SubscriptionWebhook struct {
	Checker Checker
}

var _ http.Handler = &SubscriptionWebhook{}

func (w *SubscriptionWebhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(rw, fmt.Sprintf("method %s: the Subscription webhook takes only POST of an admission.k8s.io/v1 AdmissionReview", r.Method), http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
	if err != nil {
		http.Error(rw, fmt.Sprintf("reading the AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	if len(body) > maxReviewBytes {
		http.Error(rw, fmt.Sprintf("the AdmissionReview is larger than %d bytes", maxReviewBytes), http.StatusRequestEntityTooLarge)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		http.Error(rw, fmt.Sprintf("the body is not an AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	if review.Request == nil {
		http.Error(rw, "the AdmissionReview has no request", http.StatusBadRequest)
		return
	}
	resp := w.admit(r.Context(), review.Request)
	resp.UID = review.Request.UID
	out, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	})
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write(out)
}

func (w *SubscriptionWebhook) admit(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return &admissionv1.AdmissionResponse{Allowed: true} // deletes take nothing anywhere
	}
	if req.Resource.Group != subscriptionResource.Group || req.Resource.Resource != subscriptionResource.Resource || req.SubResource != "" {
		// A ValidatingWebhookConfiguration that sends anything else here is
		// wrong; refusing says so rather than letting it pass unchecked.
		return deny(http.StatusInternalServerError, metav1.StatusReasonInternalError, fmt.Sprintf(
			"the Subscription webhook got %s %q: it checks only %s: fix the rules of the ValidatingWebhookConfiguration (deploy/hub/webhook.yaml)",
			req.Operation, schema.GroupResource{Group: req.Resource.Group, Resource: req.Resource.Resource}.String()+subresource(req.SubResource), subscriptionResource))
	}
	var sub appsv1alpha1.Subscription
	if err := json.Unmarshal(req.Object.Raw, &sub); err != nil {
		return deny(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("the Subscription does not decode: %v", err))
	}
	errs, err := w.Checker.Check(ctx, req.UserInfo, &sub)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Checking a Subscription's feeds against its author", "subscription", klog.KRef(req.Namespace, req.Name), "user", req.UserInfo.Username)
		return deny(http.StatusInternalServerError, metav1.StatusReasonInternalError, fmt.Sprintf(
			"checking that user %q may read what Subscription %s/%s feeds: %v: try again", req.UserInfo.Username, req.Namespace, req.Name, err))
	}
	if len(errs) == 0 {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	causes := make([]metav1.StatusCause, 0, len(errs))
	for _, e := range errs {
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseType(e.Type), Message: e.ErrorBody(), Field: e.Field})
	}
	resp := deny(http.StatusForbidden, metav1.StatusReasonForbidden, errs.ToAggregate().Error())
	resp.Result.Details = &metav1.StatusDetails{Group: subscriptionResource.Group, Kind: "Subscription", Name: req.Name, Causes: causes}
	return resp
}

func subresource(s string) string {
	if s == "" {
		return ""
	}
	return "/" + s
}

func deny(code int32, reason metav1.StatusReason, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg,
	}}
}
