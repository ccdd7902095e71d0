{{/*
Expand the name of the chart.
*/}}
{{- define "backend-scheduler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name, truncated at 63 characters (DNS names).
If the release name contains the chart name it is used as the full name.
*/}}
{{- define "backend-scheduler.fullname" -}}
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

{{- define "backend-scheduler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "backend-scheduler.labels" -}}
helm.sh/chart: {{ include "backend-scheduler.chart" . }}
{{ include "backend-scheduler.selectorLabels" . }}
app.kubernetes.io/version: {{ (.Values.image.tag | default .Chart.AppVersion) | toString | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: backend-scheduler
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "backend-scheduler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backend-scheduler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "backend-scheduler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "backend-scheduler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Lease's name: config.leaseName, else the full name.
*/}}
{{- define "backend-scheduler.leaseName" -}}
{{- default (include "backend-scheduler.fullname" .) .Values.config.leaseName }}
{{- end }}

{{- define "backend-scheduler.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/*
The Secret the chart creates for values given inline (apiKey.value, database.url, adminToken.value).
*/}}
{{- define "backend-scheduler.secretName" -}}
{{- include "backend-scheduler.fullname" . }}
{{- end }}

{{/*
Whether the chart creates its Secret: some secret value is given inline without an existing Secret.
*/}}
{{- define "backend-scheduler.createSecret" -}}
{{- if or (and .Values.apiKey.value (not .Values.apiKey.existingSecret)) (and .Values.database.url (not .Values.database.existingSecret)) (and .Values.adminToken.value (not .Values.adminToken.existingSecret)) -}}
true
{{- end }}
{{- end }}

{{/*
An env entry from a Secret: (dict "name" ENV "existing" secretName "key" key "inline" value "ctx" $).
Renders nothing when neither an existing Secret nor an inline value is set.
*/}}
{{- define "backend-scheduler.secretEnv" -}}
{{- if .existing }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .existing | quote }}
      key: {{ .key | quote }}
{{- else if .inline }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "backend-scheduler.secretName" .ctx | quote }}
      key: {{ .name | quote }}
{{- end }}
{{- end }}

{{/*
Checks that stop a release that could not start (the scheduler would exit with one line).
*/}}
{{- define "backend-scheduler.validate" -}}
{{- $hasKey := or .Values.apiKey.existingSecret .Values.apiKey.value }}
{{- $hasDb := or .Values.database.existingSecret .Values.database.url }}
{{- if and .Values.config.footballApiUrl (not $hasKey) }}
{{- fail "config.footballApiUrl is set without an API key: set apiKey.existingSecret or apiKey.value" }}
{{- end }}
{{- if and $hasDb (not $hasKey) (not .Values.config.demo) }}
{{- fail "a database is set (database.existingSecret or database.url) without an API key: set apiKey.existingSecret or apiKey.value, or config.demo=true to run the bundled simulator against that database on purpose" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (eq .Values.config.leaderElection "none") }}
{{- fail "replicaCount > 1 needs leader election: config.leaderElection must be kubernetes or postgres" }}
{{- end }}
{{- end }}
