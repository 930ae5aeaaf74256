{{- define "auditrail.name" -}}{{ .Chart.Name }}{{- end -}}
{{- define "auditrail.fullname" -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "auditrail.labels" -}}
app.kubernetes.io/name: {{ include "auditrail.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
The agent sidecar. Use in an application's pod spec:
  containers:
    - name: app
      volumeMounts: [{name: audit-logs, mountPath: /var/log/audit}]
    {{- include "auditrail.agentSidecar" . | nindent 4 }}
  volumes:
    {{- include "auditrail.agentVolumes" . | nindent 4 }}
The Downward API gives the agent its pod identity (source_name, source.*).
*/}}
{{- define "auditrail.agentSidecar" -}}
- name: auditrail-agent
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["/usr/bin/auditrail-agent", "--config", "/etc/auditrail/agent.yaml"]
  env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: CONTAINER_NAME, value: app}
  ports:
    - {name: agent-http, containerPort: {{ .Values.agent.httpPort }}}
  readinessProbe:
    httpGet: {path: /readyz, port: agent-http}
    periodSeconds: 5
  livenessProbe:
    httpGet: {path: /healthz, port: agent-http}
    periodSeconds: 10
  resources: {{- toYaml .Values.agent.resources | nindent 4 }}
  volumeMounts:
    - {name: audit-logs, mountPath: {{ .Values.agent.logDir }}}
    - {name: auditrail-state, mountPath: /var/lib/auditrail}
    - {name: auditrail-agent-config, mountPath: /etc/auditrail}
{{- end -}}

{{- define "auditrail.agentVolumes" -}}
- name: audit-logs
  emptyDir: {}
- name: auditrail-state
  emptyDir: {}
- name: auditrail-agent-config
  configMap:
    name: {{ include "auditrail.fullname" . }}-agent
{{- end -}}
