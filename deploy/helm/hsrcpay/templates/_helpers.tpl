{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "hsrcpay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name: the release name, with the chart's unless it already holds it. */}}
{{- define "hsrcpay.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hsrcpay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hsrcpay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The API's pods only: the migration Job's pod shares the name labels, and must never be
selected by the Service or counted by the PodDisruptionBudget. */}}
{{- define "hsrcpay.apiSelectorLabels" -}}
{{ include "hsrcpay.selectorLabels" . }}
app.kubernetes.io/component: api
{{- end }}

{{- define "hsrcpay.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hsrcpay.selectorLabels" . }}
app.kubernetes.io/version: {{ include "hsrcpay.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "hsrcpay.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "hsrcpay.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "hsrcpay.tag" .) }}
{{- end }}

{{/* The Secret holding the URLs and the idempotency key: the operator's, or the chart's. */}}
{{- define "hsrcpay.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "hsrcpay.fullname" .) }}
{{- end }}

{{/* Refuse values that would render a server that cannot start or is unsafe. */}}
{{- define "hsrcpay.validate" -}}
{{- if not .Values.secrets.existingSecret }}
{{- if not .Values.secrets.databaseURL }}
{{- fail "secrets.databaseURL (postgres://…) or secrets.existingSecret is required" }}
{{- end }}
{{- if hasPrefix "sqlite:" .Values.secrets.databaseURL }}
{{- fail "secrets.databaseURL: this chart runs replicas on PostgreSQL; SQLite is one process with its own disk (run the image alone)" }}
{{- end }}
{{- if and .Values.redis.enabled (not .Values.secrets.redisURL) }}
{{- fail "secrets.redisURL (redis://host:6379/0) is required while redis.enabled" }}
{{- end }}
{{- if not .Values.secrets.idempotencyKey }}
{{- fail "secrets.idempotencyKey is required: `openssl rand -base64 32` (the same for every replica)" }}
{{- end }}
{{- end }}
{{- if and .Values.secretScanning.existingSecret .Values.secretScanning.keysURL }}
{{- fail "secretScanning: set existingSecret or keysURL, not both" }}
{{- end }}
{{- range $k, $v := .Values.config }}
{{- if not (hasPrefix "HSRCPAY_" $k) }}
{{- fail (printf "config.%s: only HSRCPAY_* settings belong here" $k) }}
{{- end }}
{{- if has $k (list "HSRCPAY_ADDR" "HSRCPAY_METRICS_ADDR" "HSRCPAY_DATABASE_URL" "HSRCPAY_REDIS_URL" "HSRCPAY_IDEMPOTENCY_KEY_FILE" "HSRCPAY_TRUSTED_PROXIES" "HSRCPAY_SECRET_SCANNING_KEYS_FILE" "HSRCPAY_SECRET_SCANNING_KEYS_URL" "HSRCPAY_SHUTDOWN_DRAIN" "HSRCPAY_SHUTDOWN_TIMEOUT" "HSRCPAY_MIGRATE" "HSRCPAY_DEMO_ACCOUNT") }}
{{- fail (printf "config.%s: set by the chart (see values.yaml), not through config" $k) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The store's URL, from the Secret: the Deployment and the migration Job both read it. */}}
{{- define "hsrcpay.databaseEnv" -}}
- name: HSRCPAY_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "hsrcpay.secretName" . }}
      key: {{ .Values.secrets.databaseURLKey }}
{{- end }}

{{/* Pod-level hardening and the /tmp emptyDir both workloads share. */}}
{{- define "hsrcpay.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
