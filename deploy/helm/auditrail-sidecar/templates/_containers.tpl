{{/*
The agent container. Include the list templates in the pod spec:

  initContainers:
    {{- include "auditrail-sidecar.initContainers" $agent | nindent 8 }}
  containers:
    - name: app
      volumeMounts:
        {{- include "auditrail-sidecar.appVolumeMounts" $agent | nindent 12 }}
    {{- include "auditrail-sidecar.containers" $agent | nindent 8 }}
  volumes:
    {{- include "auditrail-sidecar.volumes" $agent | nindent 8 }}

Exactly one of initContainers / containers holds the agent (native sidecar
or the pre-1.29 fallback); the other renders an empty list.
*/}}
{{- define "auditrail-sidecar.container" -}}
{{- $v := fromYaml (include "auditrail-sidecar.values" .) -}}
{{- $native := include "auditrail-sidecar.native" . -}}
- name: auditrail-agent
  image: {{ printf "%s:%s" $v.image.repository $v.image.tag | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if $native }}
  # A native sidecar: started before the application, stopped after it, so
  # the agent reads what the application wrote until its last line.
  restartPolicy: Always
  {{- end }}
  command: ["/usr/bin/auditrail-agent", "--config", "/etc/auditrail/agent/agent.yaml"]
  env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_NAMESPACE
      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
    - name: NODE_NAME
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: CONTAINER_NAME
      value: {{ $v.appContainerName | quote }}
    {{- if $v.kafka.sasl.enabled }}
    - name: AUDITRAIL_SECRET_KAFKA_SASL_USERNAME
      valueFrom: {secretKeyRef: {name: {{ $v.kafka.sasl.existingSecret | quote }}, key: {{ $v.kafka.sasl.usernameKey | quote }}}}
    - name: AUDITRAIL_SECRET_KAFKA_SASL_PASSWORD
      valueFrom: {secretKeyRef: {name: {{ $v.kafka.sasl.existingSecret | quote }}, key: {{ $v.kafka.sasl.passwordKey | quote }}}}
    {{- end }}
    {{- if $v.alerts.urlKey }}
    - name: AUDITRAIL_SECRET_ALERTS_URL
      valueFrom: {secretKeyRef: {name: {{ required "auditrailAgent.alerts.existingSecret: required with urlKey" $v.alerts.existingSecret | quote }}, key: {{ $v.alerts.urlKey | quote }}}}
    {{- end }}
    {{- range $i, $h := $v.alerts.secretHeaders }}
    - name: {{ printf "AUDITRAIL_SECRET_ALERT_HEADER_%d" $i }}
      valueFrom: {secretKeyRef: {name: {{ required "auditrailAgent.alerts.existingSecret: required with secretHeaders" $v.alerts.existingSecret | quote }}, key: {{ required "auditrailAgent.alerts.secretHeaders[].key: required" $h.key | quote }}}}
    {{- end }}
    {{- with $v.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: auditrail-http
      containerPort: {{ $v.port | int }}
      protocol: TCP
  startupProbe:
    httpGet: {path: /healthz, port: auditrail-http}
    periodSeconds: {{ $v.probes.startup.periodSeconds | int }}
    failureThreshold: {{ $v.probes.startup.failureThreshold | int }}
  # Ready = running and reading; a Kafka outage does not take the
  # application out of its Services (the file is the buffer).
  readinessProbe:
    httpGet: {path: /readyz, port: auditrail-http}
    periodSeconds: {{ $v.probes.readiness.periodSeconds | int }}
    failureThreshold: {{ $v.probes.readiness.failureThreshold | int }}
  # Live = the main loop turned within 30 s (a heartbeat), not merely that
  # the HTTP thread answers.
  livenessProbe:
    httpGet: {path: /livez, port: auditrail-http}
    periodSeconds: {{ $v.probes.liveness.periodSeconds | int }}
    failureThreshold: {{ $v.probes.liveness.failureThreshold | int }}
  {{- if not $native }}
  lifecycle:
    # Without native sidecars the agent is stopped together with the
    # application: wait for the last lines to be written and read, then
    # SIGTERM makes the agent await Kafka's acknowledgements.
    preStop:
      exec:
        command: ["/bin/sleep", {{ $v.preStopDrainSeconds | int | toString | quote }}]
  {{- end }}
  resources: {{- toYaml $v.resources | nindent 4 }}
  securityContext: {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: {{ $v.logVolume.name }}
      mountPath: {{ $v.logDir }}
      readOnly: true
    - name: {{ $v.checkpointVolume.name }}
      mountPath: /var/lib/auditrail
    - name: auditrail-agent-config
      mountPath: /etc/auditrail/agent
      readOnly: true
    {{- if $v.kafka.tls.enabled }}
    - name: auditrail-kafka-tls
      mountPath: /etc/auditrail/kafka-tls
      readOnly: true
    {{- end }}
{{- end -}}

{{- define "auditrail-sidecar.initContainers" -}}
{{- if include "auditrail-sidecar.native" . -}}
{{- include "auditrail-sidecar.container" . -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{- define "auditrail-sidecar.containers" -}}
{{- if not (include "auditrail-sidecar.native" .) -}}
{{- include "auditrail-sidecar.container" . -}}
{{- end -}}
{{- end -}}

{{/* The application container's mount of the audit-log volume. */}}
{{- define "auditrail-sidecar.appVolumeMounts" -}}
{{- $v := fromYaml (include "auditrail-sidecar.values" .) -}}
- name: {{ $v.logVolume.name }}
  mountPath: {{ $v.logDir }}
{{- end -}}

{{- define "auditrail-sidecar.volumes" -}}
{{- $v := fromYaml (include "auditrail-sidecar.values" .) -}}
- name: {{ $v.logVolume.name }}
  emptyDir:
    sizeLimit: {{ $v.logVolume.sizeLimit }}
    {{- with $v.logVolume.medium }}
    medium: {{ . }}
    {{- end }}
- name: {{ $v.checkpointVolume.name }}
  emptyDir:
    sizeLimit: {{ $v.checkpointVolume.sizeLimit }}
- name: auditrail-agent-config
  configMap:
    name: {{ include "auditrail-sidecar.configMapName" . }}
{{- if $v.kafka.tls.enabled }}
- name: auditrail-kafka-tls
  secret:
    secretName: {{ $v.kafka.tls.existingSecret }}
    defaultMode: 0444
{{- end }}
{{- end -}}

{{/* A pod terminationGracePeriodSeconds that covers the agent's drain:
the preStop wait (container mode) plus drainTimeoutS (reading every file to
its end) plus shutdownTimeoutMs (the last acknowledgements), plus a margin. */}}
{{- define "auditrail-sidecar.terminationGracePeriodSeconds" -}}
{{- $v := fromYaml (include "auditrail-sidecar.values" .) -}}
{{- $drain := add (div ($v.shutdownTimeoutMs | int64) 1000) ($v.drainTimeoutS | int64) -}}
{{- if not (include "auditrail-sidecar.native" .) -}}
{{- $drain = add $drain ($v.preStopDrainSeconds | int64) -}}
{{- end -}}
{{- add $drain 10 -}}
{{- end -}}

{{/* Pod labels: mark the pod as carrying an agent (the auditrail chart's
PodMonitor selects them). */}}
{{- define "auditrail-sidecar.podLabels" -}}
auditrail.io/agent: "true"
{{- end -}}
