{{/* Labels of every object. */}}
{{- define "clusternet-hub.labels" -}}
app.kubernetes.io/name: clusternet-hub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: clusternet
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The image: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "clusternet-hub.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* Feature gates as Name=bool,... sorted by name. */}}
{{- define "clusternet-hub.featureGates" -}}
{{- $gates := list -}}
{{- range $name, $on := .Values.featureGates -}}
{{- $gates = append $gates (printf "%s=%t" $name $on) -}}
{{- end -}}
{{- join "," $gates -}}
{{- end }}

{{/* The Service the APIServices and the webhook call, and its DNS name. */}}
{{- define "clusternet-hub.serviceName" -}}clusternet-hub{{- end }}

{{/* Checks the values cannot express in the schema. */}}
{{- define "clusternet-hub.validate" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- if not .Values.tls.secretName -}}
{{- fail "tls.secretName is required when tls.mode is \"secret\": name a kubernetes.io/tls Secret in the release namespace, or use tls.mode=hubManaged" -}}
{{- end -}}
{{- if not (contains "-----BEGIN CERTIFICATE-----" .Values.tls.caBundle) -}}
{{- fail "tls.caBundle must be the PEM of the CA that signed tls.secretName's certificate (\"-----BEGIN CERTIFICATE-----...\") when tls.mode is \"secret\": the parent verifies the hub with it" -}}
{{- end -}}
{{- else if or .Values.tls.secretName .Values.tls.caBundle -}}
{{- fail (printf "tls.secretName and tls.caBundle are used only with tls.mode=secret, not %q: set tls.mode=secret to serve with your own certificate" .Values.tls.mode) -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicaCount %d needs leaderElection.enabled=true: without it every replica runs the controllers and they deploy twice" (int .Values.replicaCount)) -}}
{{- end -}}
{{- range $p := .Values.admissionPolicies.agentLabelPrefixes -}}
{{- range $r := list "clusters.clusternet.io/" "clusternet.io/" "kubernetes.io/" "k8s.io/" -}}
{{- if hasPrefix $r $p -}}
{{- fail (printf "admissionPolicies.agentLabelPrefixes %q: labels under %q are reserved for Clusternet and Kubernetes (Subscriptions select clusters by them); pick a prefix of another domain, e.g. node.clusternet.io/" $p $r) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $flag, $v := .Values.extraArgs -}}
{{- if hasPrefix "-" $flag -}}
{{- fail (printf "extraArgs key %q: write the flag name without dashes, e.g. %q" $flag (trimPrefix "-" (trimPrefix "-" $flag))) -}}
{{- end -}}
{{- end -}}
{{- if .Values.clusterAPI.namespaces -}}
{{- if not .Values.clusterAPI.parentURL -}}
{{- fail "clusterAPI.parentURL is required with clusterAPI.namespaces: the parent apiserver's https URL as the discovered clusters reach it, e.g. --set clusterAPI.parentURL=https://parent.example.com:6443" -}}
{{- end -}}
{{- if and (has "*" .Values.clusterAPI.namespaces) (gt (len .Values.clusterAPI.namespaces) 1) -}}
{{- fail "clusterAPI.namespaces: \"*\" means every namespace and stands alone; name namespaces or give [\"*\"]" -}}
{{- end -}}
{{- else if or .Values.clusterAPI.parentURL .Values.clusterAPI.kubeconfigSecret -}}
{{- fail "clusterAPI.parentURL and clusterAPI.kubeconfigSecret need clusterAPI.namespaces: discovery stays off until you name the namespaces whose Clusters the hub may act on" -}}
{{- end -}}
{{- end }}

{{/* matchConditions of the policies that warn of fields not acted on (admission.yaml). */}}
{{- define "clusternet-hub.notActedOnMatch" -}}
- name: spec-written
  expression: "request.operation != 'UPDATE' || object.spec != oldObject.spec"
- name: not-by-the-hub
  expression: "request.userInfo.username != 'system:serviceaccount:{{ .Release.Namespace }}:clusternet-hub'"
{{- end }}
