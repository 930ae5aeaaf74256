{{/*
auditrail.config: the aggregator's configuration for one role. Credentials
are ${VAR} references to environment variables set from Secrets
(auditrail.secretEnv); the programs expand them at start.
  include "auditrail.config" (dict "root" $ "role" "consumer|all|query")
*/}}
{{- define "auditrail.config" -}}
{{- $v := .root.Values -}}
{{- $port := ternary $v.query.port $v.aggregator.port (eq .role "query") -}}
kafka:
  brokers: {{ $v.kafka.brokers | quote }}
  topic: {{ $v.kafka.topic | quote }}
  group: {{ $v.kafka.group | quote }}
  dlq_topic: {{ $v.kafka.dlqTopic | quote }}
  {{- $props := include "auditrail.kafkaProperties" .root | fromYaml }}
  {{- with $props }}
  properties: {{- toYaml . | nindent 4 }}
  {{- end }}
postgres:
  primary: {{ $v.postgres.primary | quote }}
  {{- with $v.postgres.replicas }}
  replicas: {{- toYaml . | nindent 4 }}
  {{- end }}
  max_replica_lag_ms: {{ $v.postgres.maxReplicaLagMs | int64 }}
{{- if or $v.redis.url $v.redis.existingSecret }}
redis:
  {{- if $v.redis.url }}
  url: {{ $v.redis.url | quote }}
  {{- end }}
  timeout_ms: {{ $v.redis.timeoutMs | int64 }}
{{- end }}
writer:
  connections: {{ $v.config.writer.connections | int64 }}
batch:
  max_events: {{ $v.config.batch.maxEvents | int64 }}
  max_bytes: {{ $v.config.batch.maxBytes | quote }}
  max_ms: {{ $v.config.batch.maxMs | int64 }}
dedupe:
  lru_size: {{ $v.config.dedupe.lruSize | int64 }}
  redis_ttl_s: {{ $v.config.dedupe.redisTtlS | int64 }}
partitions:
  premake: {{ $v.config.partitions.premake | int64 }}
  retention_days: {{ $v.config.partitions.retentionDays | int64 }}
  retention_keep_table: {{ $v.config.partitions.retentionKeepTable }}
  maintenance_interval_s: {{ $v.config.partitions.maintenanceIntervalS | int64 }}
breaker:
  window: {{ $v.config.breaker.window | int64 }}
  min_calls: {{ $v.config.breaker.minCalls | int64 }}
  failure_rate_pct: {{ $v.config.breaker.failureRatePct | int64 }}
  consecutive_failures: {{ $v.config.breaker.consecutiveFailures | int64 }}
  open_base_ms: {{ $v.config.breaker.openBaseMs | int64 }}
  open_max_ms: {{ $v.config.breaker.openMaxMs | int64 }}
{{- if or $v.alerts.url $v.alerts.urlKey }}
alerts:
  url: {{ if $v.alerts.urlKey }}"${AUDITRAIL_SECRET_ALERTS_URL}"{{ else }}{{ $v.alerts.url | quote }}{{ end }}
  {{- with $v.alerts.generatorUrl }}
  generator_url: {{ . | quote }}
  {{- end }}
  {{- with $v.alerts.labels }}
  labels: {{- toYaml . | nindent 4 }}
  {{- end }}
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
http:
  listen: {{ printf ":%d" ($port | int) | quote }}
{{- if eq .role "query" }}
# The read path (issue 10): the query API listens here.
query:
  listen: {{ printf ":%d" ($v.query.apiPort | int) | quote }}
{{- end }}
log:
  level: {{ $v.config.logLevel }}
{{- end -}}

{{- define "auditrail.kafkaProperties" -}}
{{- $p := deepCopy (.Values.kafka.properties | default dict) -}}
{{- if .Values.kafka.sasl.enabled -}}
{{- $_ := set $p "security.protocol" .Values.kafka.sasl.securityProtocol -}}
{{- $_ := set $p "sasl.mechanism" .Values.kafka.sasl.mechanism -}}
{{- $_ := set $p "sasl.username" "${AUDITRAIL_SECRET_KAFKA_SASL_USERNAME}" -}}
{{- $_ := set $p "sasl.password" "${AUDITRAIL_SECRET_KAFKA_SASL_PASSWORD}" -}}
{{- else if .Values.kafka.tls.enabled -}}
{{- $_ := set $p "security.protocol" "SSL" -}}
{{- end -}}
{{- if .Values.kafka.tls.enabled -}}
{{- $_ := set $p "ssl.ca.location" (printf "/etc/auditrail/kafka-tls/%s" .Values.kafka.tls.caKey) -}}
{{- if .Values.kafka.tls.certKey -}}
{{- $_ := set $p "ssl.certificate.location" (printf "/etc/auditrail/kafka-tls/%s" .Values.kafka.tls.certKey) -}}
{{- $_ := set $p "ssl.key.location" (printf "/etc/auditrail/kafka-tls/%s" .Values.kafka.tls.keyKey) -}}
{{- end -}}
{{- end -}}
{{- toYaml $p -}}
{{- end -}}
