{{/* Names, labels and the pieces every workload of this chart shares. */}}
{{- define "auditrail.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "auditrail.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "auditrail.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "auditrail.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: auditrail
{{- end -}}

{{- define "auditrail.selectorLabels" -}}
app.kubernetes.io/name: {{ include "auditrail.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "auditrail.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "auditrail.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "auditrail.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Credentials never go into a ConfigMap: fail on a value that carries one. */}}
{{- define "auditrail.checkCredentials" -}}
{{- $dsns := concat (list .Values.postgres.primary) (.Values.postgres.replicas | default list) -}}
{{- range $dsns -}}
{{- if regexMatch "(?i)(^|\\s)password\\s*=" . -}}
{{- fail "postgres.primary/replicas: a password in a connection string would land in a ConfigMap; put it in a Secret (postgres.existingSecret + passwordKey or primaryKey)" -}}
{{- end -}}
{{- if regexMatch "^postgres(ql)?://[^/@]*:[^/@]*@" . -}}
{{- fail "postgres.primary/replicas: a password in a connection URI would land in a ConfigMap; put it in a Secret (postgres.existingSecret)" -}}
{{- end -}}
{{- end -}}
{{- if regexMatch "^rediss?://[^/@]*@" .Values.redis.url -}}
{{- fail "redis.url: credentials in the URL would land in a ConfigMap; put the URL in a Secret (redis.existingSecret + urlKey)" -}}
{{- end -}}
{{- if regexMatch "^https?://[^/@]*@" .Values.alerts.url -}}
{{- fail "alerts.url: credentials in the URL would land in a ConfigMap; use alerts.existingSecret + urlKey" -}}
{{- end -}}
{{- range $k, $v := .Values.kafka.properties -}}
{{- if regexMatch "(?i)(password|secret|token|credential|api[._-]?key)" $k -}}
{{- if not (regexMatch "^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$" (toString $v)) -}}
{{- fail (printf "kafka.properties.%s: put credentials in a Secret (kafka.sasl.existingSecret), not in values" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $k, $v := .Values.alerts.headers -}}
{{- if regexMatch "(?i)(authorization|token|secret|api[._-]?key|password)" $k -}}
{{- fail (printf "alerts.headers.%s: put credentials in a Secret (alerts.secretHeaders)" $k) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.kafka.sasl.enabled (not .Values.kafka.sasl.existingSecret) -}}
{{- fail "kafka.sasl.existingSecret: required when kafka.sasl.enabled" -}}
{{- end -}}
{{- if and .Values.kafka.tls.enabled (not .Values.kafka.tls.existingSecret) -}}
{{- fail "kafka.tls.existingSecret: required when kafka.tls.enabled" -}}
{{- end -}}
{{- if and (or .Values.postgres.passwordKey .Values.postgres.primaryKey .Values.postgres.replicasKey) (not .Values.postgres.existingSecret) -}}
{{- fail "postgres.existingSecret: required with passwordKey, primaryKey or replicasKey" -}}
{{- end -}}
{{- if and (or .Values.alerts.urlKey .Values.alerts.secretHeaders) (not .Values.alerts.existingSecret) -}}
{{- fail "alerts.existingSecret: required with urlKey or secretHeaders" -}}
{{- end -}}
{{- if and .Values.query.enabled (eq .Values.aggregator.role "all") -}}
{{- fail "aggregator.role: set it to consumer when query.enabled runs the query role apart" -}}
{{- end -}}
{{- end -}}

{{/* Environment variables filled from Secrets; the configuration refers to
them as ${VAR} (the programs expand it), so no credential is in a ConfigMap. */}}
{{- define "auditrail.secretEnv" -}}
{{- with .Values.postgres -}}
{{- if .passwordKey }}
- name: PGPASSWORD
  valueFrom: {secretKeyRef: {name: {{ .existingSecret | quote }}, key: {{ .passwordKey | quote }}}}
{{- end }}
{{- if .primaryKey }}
- name: AUDITRAIL_POSTGRES_PRIMARY
  valueFrom: {secretKeyRef: {name: {{ .existingSecret | quote }}, key: {{ .primaryKey | quote }}}}
{{- end }}
{{- if .replicasKey }}
- name: AUDITRAIL_POSTGRES_REPLICAS
  valueFrom: {secretKeyRef: {name: {{ .existingSecret | quote }}, key: {{ .replicasKey | quote }}}}
{{- end }}
{{- end }}
{{- if .Values.redis.existingSecret }}
- name: AUDITRAIL_REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ .Values.redis.existingSecret | quote }}, key: {{ .Values.redis.urlKey | quote }}}}
{{- end }}
{{- if .Values.kafka.sasl.enabled }}
- name: AUDITRAIL_SECRET_KAFKA_SASL_USERNAME
  valueFrom: {secretKeyRef: {name: {{ .Values.kafka.sasl.existingSecret | quote }}, key: {{ .Values.kafka.sasl.usernameKey | quote }}}}
- name: AUDITRAIL_SECRET_KAFKA_SASL_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ .Values.kafka.sasl.existingSecret | quote }}, key: {{ .Values.kafka.sasl.passwordKey | quote }}}}
{{- end }}
{{- if .Values.alerts.urlKey }}
- name: AUDITRAIL_SECRET_ALERTS_URL
  valueFrom: {secretKeyRef: {name: {{ .Values.alerts.existingSecret | quote }}, key: {{ .Values.alerts.urlKey | quote }}}}
{{- end }}
{{- range $i, $h := .Values.alerts.secretHeaders }}
- name: {{ printf "AUDITRAIL_SECRET_ALERT_HEADER_%d" $i }}
  valueFrom: {secretKeyRef: {name: {{ $.Values.alerts.existingSecret | quote }}, key: {{ $h.key | quote }}}}
{{- end }}
{{- end -}}

{{/* Volumes and mounts for TLS material from Secrets. */}}
{{- define "auditrail.secretVolumes" -}}
{{- if .Values.kafka.tls.enabled }}
- name: kafka-tls
  secret: {secretName: {{ .Values.kafka.tls.existingSecret | quote }}, defaultMode: 0440}
{{- end }}
{{- if .Values.postgres.tlsSecret }}
- name: postgres-tls
  secret: {secretName: {{ .Values.postgres.tlsSecret | quote }}, defaultMode: 0440}
{{- end }}
{{- end -}}

{{- define "auditrail.secretVolumeMounts" -}}
{{- if .Values.kafka.tls.enabled }}
- {name: kafka-tls, mountPath: /etc/auditrail/kafka-tls, readOnly: true}
{{- end }}
{{- if .Values.postgres.tlsSecret }}
- {name: postgres-tls, mountPath: /etc/auditrail/postgres-tls, readOnly: true}
{{- end }}
{{- end -}}
