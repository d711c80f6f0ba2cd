{{/*
The name of the chart, or nameOverride.
*/}}
{{- define "talkover-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A fully qualified app name: the release name, followed by the chart name unless
the release name already contains it. Truncated to leave room for the suffixes
of the resource names (at most 63 characters in all).
*/}}
{{- define "talkover-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, as used by the chart label.
*/}}
{{- define "talkover-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "talkover-operator.labels" -}}
helm.sh/chart: {{ include "talkover-operator.chart" . }}
{{ include "talkover-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "talkover-operator.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: talkover-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of the release.
*/}}
{{- define "talkover-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "talkover-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector labels of the manager pods.
*/}}
{{- define "talkover-operator.managerSelectorLabels" -}}
{{ include "talkover-operator.selectorLabels" . }}
control-plane: controller-manager
{{- end }}

{{/*
The name of the manager's ServiceAccount.
*/}}
{{- define "talkover-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-controller-manager" (include "talkover-operator.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Resource names.
*/}}
{{- define "talkover-operator.deploymentName" -}}
{{- printf "%s-controller-manager" (include "talkover-operator.fullname" .) }}
{{- end }}

{{- define "talkover-operator.managerRoleName" -}}
{{- printf "%s-manager-role" (include "talkover-operator.fullname" .) }}
{{- end }}

{{- define "talkover-operator.metricsServiceName" -}}
{{- printf "%s-metrics-service" (include "talkover-operator.fullname" .) }}
{{- end }}

{{/*
The manager image tag: image.tag, else v followed by the chart's appVersion
(the tag make release gives the image).
*/}}
{{- define "talkover-operator.imageTag" -}}
{{- .Values.image.tag | default (printf "v%s" .Chart.AppVersion) | toString }}
{{- end }}

{{/*
The manager image: repository:tag, or repository@digest when a digest is set.
*/}}
{{- define "talkover-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "talkover-operator.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
The scheme of the metrics endpoint.
*/}}
{{- define "talkover-operator.metricsScheme" -}}
{{- if .Values.metrics.secure }}https{{ else }}http{{ end }}
{{- end }}

{{/*
Checks of value combinations that the schema cannot express.
*/}}
{{- define "talkover-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: several managers without leader election would fight over the same resources" }}
{{- end }}
{{- if and .Values.prometheus.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "prometheus.serviceMonitor.enabled=true needs metrics.enabled=true" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (eq (toString .Values.podDisruptionBudget.minAvailable) "") (eq (toString .Values.podDisruptionBudget.maxUnavailable) "") }}
{{- fail "podDisruptionBudget.enabled=true needs minAvailable or maxUnavailable" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (not .Values.metrics.enabled) }}
{{- fail "networkPolicy.enabled=true needs metrics.enabled=true: the policy only admits metrics traffic" }}
{{- end }}
{{- end }}
