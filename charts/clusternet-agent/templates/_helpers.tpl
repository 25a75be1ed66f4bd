{{/* Labels of every object. */}}
{{- define "clusternet-agent.labels" -}}
app.kubernetes.io/name: clusternet-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: clusternet
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The image: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "clusternet-agent.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* Name=value pairs joined by commas, sorted by name. */}}
{{- define "clusternet-agent.pairs" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%v" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end }}

{{/* Checks the values cannot express in the schema. */}}
{{- define "clusternet-agent.validate" -}}
{{- if .Values.registrationSecret.create -}}
{{- if not .Values.parentURL -}}
{{- fail "parentURL is required: the parent apiserver's https URL, e.g. --set parentURL=https://192.168.10.10:6443 (or registrationSecret.create=false to bring your own Secret)" -}}
{{- end -}}
{{- if not .Values.registrationToken -}}
{{- fail "registrationToken is required: make one in the parent with `kubectl clusternet create token` and pass --set registrationToken=<token> (or registrationSecret.create=false to bring your own Secret)" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.parentCA (not (contains "-----BEGIN CERTIFICATE-----" .Values.parentCA)) -}}
{{- fail "parentCA must be PEM (\"-----BEGIN CERTIFICATE-----...\"): pass the file with --set-file parentCA=<ca.crt>" -}}
{{- end -}}
{{- if eq (int .Values.healthProbe.port) (int .Values.metrics.port) -}}
{{- fail (printf "healthProbe.port and metrics.port are both %d: give them different ports" (int .Values.metrics.port)) -}}
{{- end -}}
{{- range $flag, $v := .Values.extraArgs -}}
{{- if hasPrefix "-" $flag -}}
{{- fail (printf "extraArgs key %q: write the flag name without dashes, e.g. %q" $flag (trimPrefix "-" (trimPrefix "-" $flag))) -}}
{{- end -}}
{{- end -}}
{{- end }}
