{{/*
auditrail-sidecar.config: the agent's auditrail configuration (agent.yaml).
Pod identity comes from the Downward API at run time (${POD_NAME} and the
others are expanded by the agent); credentials are ${VAR} references to
environment variables filled from Secrets, never values.
*/}}
{{- define "auditrail-sidecar.config" -}}
{{- $v := fromYaml (include "auditrail-sidecar.values" .) -}}
agent:
  source_name: {{ $v.sourceName | quote }}
  source:
    host: ${NODE_NAME}
    namespace: ${POD_NAMESPACE}
    pod: ${POD_NAME}
    container: ${CONTAINER_NAME}
  checkpoint_dir: /var/lib/auditrail
  read_from: {{ $v.readFrom }}
  max_record_bytes: {{ $v.maxRecordBytes | quote }}
  max_inflight_bytes: {{ $v.maxInflightBytes | quote }}
  shutdown_timeout_ms: {{ $v.shutdownTimeoutMs | int64 }}
  drain_timeout_s: {{ $v.drainTimeoutS | int64 }}
  kafka_unready_ms: {{ $v.kafkaUnreadyMs | int64 }}
  inputs:
  {{- range $v.inputs }}
    - path: {{ printf "%s/%s" $v.logDir .path | quote }}
      format: {{ .format | default "raw" }}
      {{- with .multiline }}
      multiline: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .fields }}
      fields: {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- end }}
kafka:
  brokers: {{ $v.kafka.brokers | quote }}
  topic: {{ $v.kafka.topic | quote }}
  {{- $props := include "auditrail-sidecar.kafkaProperties" $v | fromYaml }}
  {{- with $props }}
  properties: {{- toYaml . | nindent 4 }}
  {{- end }}
http:
  listen: {{ printf ":%d" ($v.port | int) | quote }}
log:
  level: {{ $v.logLevel }}
{{- if or $v.alerts.url $v.alerts.urlKey }}
alerts:
  url: {{ if $v.alerts.urlKey }}"${AUDITRAIL_SECRET_ALERTS_URL}"{{ else }}{{ $v.alerts.url | quote }}{{ end }}
  {{- if or $v.alerts.headers $v.alerts.secretHeaders }}
  headers:
    {{- range $k, $h := $v.alerts.headers }}
    {{ $k }}: {{ $h | quote }}
    {{- end }}
    {{- range $i, $h := $v.alerts.secretHeaders }}
    {{ $h.name }}: {{ printf "${AUDITRAIL_SECRET_ALERT_HEADER_%d}" $i | quote }}
    {{- end }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* librdkafka properties: the user's, plus SASL and TLS from Secrets. */}}
{{- define "auditrail-sidecar.kafkaProperties" -}}
{{- $p := deepCopy (.kafka.properties | default dict) -}}
{{- if .kafka.sasl.enabled -}}
{{- $_ := set $p "security.protocol" .kafka.sasl.securityProtocol -}}
{{- $_ := set $p "sasl.mechanism" .kafka.sasl.mechanism -}}
{{- $_ := set $p "sasl.username" "${AUDITRAIL_SECRET_KAFKA_SASL_USERNAME}" -}}
{{- $_ := set $p "sasl.password" "${AUDITRAIL_SECRET_KAFKA_SASL_PASSWORD}" -}}
{{- else if .kafka.tls.enabled -}}
{{- $_ := set $p "security.protocol" "SSL" -}}
{{- end -}}
{{- if .kafka.tls.enabled -}}
{{- $_ := set $p "ssl.ca.location" (printf "/etc/auditrail/kafka-tls/%s" .kafka.tls.caKey) -}}
{{- if .kafka.tls.certKey -}}
{{- $_ := set $p "ssl.certificate.location" (printf "/etc/auditrail/kafka-tls/%s" .kafka.tls.certKey) -}}
{{- $_ := set $p "ssl.key.location" (printf "/etc/auditrail/kafka-tls/%s" .kafka.tls.keyKey) -}}
{{- end -}}
{{- end -}}
{{- toYaml $p -}}
{{- end -}}

{{/* The agent's ConfigMap, to render from one template file of the app. */}}
{{- define "auditrail-sidecar.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "auditrail-sidecar.configMapName" . }}
  labels:
    app.kubernetes.io/name: auditrail-agent
    app.kubernetes.io/instance: {{ .root.Release.Name }}
    app.kubernetes.io/component: audit-sidecar
    app.kubernetes.io/managed-by: {{ .root.Release.Service }}
data:
  agent.yaml: |
    {{- include "auditrail-sidecar.config" . | nindent 4 }}
{{- end -}}

{{/* Pod annotations: a checksum of the agent's configuration, so that a
change rolls the pods. */}}
{{- define "auditrail-sidecar.podAnnotations" -}}
checksum/auditrail-agent-config: {{ include "auditrail-sidecar.config" . | sha256sum }}
{{- end -}}
