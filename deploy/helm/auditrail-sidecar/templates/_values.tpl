{{/*
auditrail-sidecar: the agent's settings and their defaults.

Every template of this library takes one dict, never the application's
.Values:
  (dict "values" .Values.auditrailAgent   # the agent's settings (below)
        "name"   (include "myapp.fullname" .)   # prefix of the ConfigMap name
        "root"   $)                       # only for .Release and .Capabilities
*/}}

{{- define "auditrail-sidecar.defaults" -}}
# native (initContainers + restartPolicy: Always, Kubernetes >= 1.29),
# container (a regular container with a preStop drain), or auto (native when
# the cluster is 1.29 or newer).
mode: auto
image:
  repository: auditrail
  tag: "0.1.0"   # = the repository's VERSION (checked by tests)
  pullPolicy: IfNotPresent
# Name of the application container that writes the audit log (CONTAINER_NAME,
# part of the source name and of every stream id).
appContainerName: app
# Where the application writes its audit files; an emptyDir shared with the
# agent. The agent reads the files, the sizeLimit bounds what waits there
# while Kafka is away (the file is the buffer).
logDir: /var/log/audit
logVolume:
  name: auditrail-audit-logs
  sizeLimit: 1Gi
  medium: ""
# The checkpoint (acknowledged positions) lives on its own volume so that an
# agent restart continues every stream exactly.
checkpointVolume:
  name: auditrail-agent-state
  sizeLimit: 16Mi
inputs:
  - path: "*.log"
    format: json
sourceName: ${POD_NAMESPACE}/${POD_NAME}/${CONTAINER_NAME}
readFrom: beginning
maxRecordBytes: 512KiB
maxInflightBytes: 8MiB
shutdownTimeoutMs: 10000
# On SIGTERM the agent reads every file to its end and ships it for up to
# this long (the emptyDir goes with the pod); the grace period covers it.
drainTimeoutS: 15
kafkaUnreadyMs: 15000
logLevel: info
port: 9100
kafka:
  brokers: ""
  topic: audit.events
  properties: {}
  sasl:
    enabled: false
    mechanism: SCRAM-SHA-512
    securityProtocol: SASL_SSL
    existingSecret: ""
    usernameKey: username
    passwordKey: password
  tls:
    enabled: false
    existingSecret: ""
    caKey: ca.crt
    certKey: ""
    keyKey: ""
alerts:
  url: ""
  existingSecret: ""
  urlKey: ""
  headers: {}
  secretHeaders: []
resources:
  requests:
    cpu: 50m
    memory: 32Mi
  limits:
    memory: 64Mi
# Container securityContext: the restricted Pod Security Standard. The agent
# reads the application's files: they must be readable by runAsUser or by a
# group it has (set fsGroup on the pod, or runAsGroup to the writer's group).
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
probes:
  startup:
    periodSeconds: 2
    failureThreshold: 30
  readiness:
    periodSeconds: 10
    failureThreshold: 3
  liveness:
    periodSeconds: 10
    failureThreshold: 3
# container mode only: the preStop wait that lets the application finish
# writing and the agent read to the end of its files before SIGTERM.
preStopDrainSeconds: 10
extraEnv: []
{{- end -}}

{{/* The merged settings as YAML: defaults overwritten by .values. Unknown
keys and bad values fail the rendering with the key's path. */}}
{{- define "auditrail-sidecar.values" -}}
{{- $d := fromYaml (include "auditrail-sidecar.defaults" .) -}}
{{- $u := .values | default dict -}}
{{- include "auditrail-sidecar.checkKeys" (dict "d" $d "u" $u "path" "auditrailAgent") -}}
{{- $v := mustMergeOverwrite (deepCopy $d) (deepCopy $u) -}}
{{- if not (has $v.mode (list "auto" "native" "container")) -}}
{{- fail (printf "auditrailAgent.mode: %v is not auto, native or container" $v.mode) -}}
{{- end -}}
{{- if not $v.kafka.brokers -}}
{{- fail "auditrailAgent.kafka.brokers: required (host:port, comma-separated)" -}}
{{- end -}}
{{- if not $v.inputs -}}
{{- fail "auditrailAgent.inputs: at least one input is required" -}}
{{- end -}}
{{- range $i, $in := $v.inputs -}}
{{- if not $in.path -}}
{{- fail (printf "auditrailAgent.inputs[%d].path: required" $i) -}}
{{- end -}}
{{- if contains "/" $in.path -}}
{{- fail (printf "auditrailAgent.inputs[%d].path: a file name glob inside logDir, without '/'" $i) -}}
{{- end -}}
{{- if and $in.format (not (has $in.format (list "json" "kv" "k8s-audit" "auditd" "fhir" "raw"))) -}}
{{- fail (printf "auditrailAgent.inputs[%d].format: %v is not json, kv, k8s-audit, auditd, fhir or raw" $i $in.format) -}}
{{- end -}}
{{- end -}}
{{- if and $v.kafka.sasl.enabled (not $v.kafka.sasl.existingSecret) -}}
{{- fail "auditrailAgent.kafka.sasl.existingSecret: required when kafka.sasl.enabled" -}}
{{- end -}}
{{- if and $v.kafka.tls.enabled (not $v.kafka.tls.existingSecret) -}}
{{- fail "auditrailAgent.kafka.tls.existingSecret: required when kafka.tls.enabled" -}}
{{- end -}}
{{- include "auditrail-sidecar.noCredentials" (dict "props" $v.kafka.properties "path" "auditrailAgent.kafka.properties") -}}
{{- include "auditrail-sidecar.noCredentials" (dict "props" $v.alerts.headers "path" "auditrailAgent.alerts.headers") -}}
{{- toYaml $v -}}
{{- end -}}

{{/* Fail on a key of u that d does not have, one level of maps deep (free
form maps: properties, headers, resources, securityContext, fields). */}}
{{- define "auditrail-sidecar.checkKeys" -}}
{{- $free := list "properties" "headers" "resources" "securityContext" "requests" "limits" "multiline" "fields" -}}
{{- range $k, $uv := .u -}}
{{- if not (hasKey $.d $k) -}}
{{- fail (printf "%s.%s: unknown key" $.path $k) -}}
{{- end -}}
{{- $dv := index $.d $k -}}
{{- if and (kindIs "map" $dv) (not (has $k $free)) -}}
{{- if not (kindIs "map" $uv) -}}
{{- fail (printf "%s.%s: expected a mapping" $.path $k) -}}
{{- end -}}
{{- include "auditrail-sidecar.checkKeys" (dict "d" $dv "u" $uv "path" (printf "%s.%s" $.path $k)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Credentials never go into a ConfigMap: a value under a key that names a
secret must be a ${VAR} reference filled from a Secret. */}}
{{- define "auditrail-sidecar.noCredentials" -}}
{{- range $k, $val := .props -}}
{{- if regexMatch "(?i)(password|secret|token|authorization|credential|api[._-]?key)" $k -}}
{{- if not (regexMatch "^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$" (toString $val)) -}}
{{- fail (printf "%s.%s: put credentials in a Secret (existingSecret / secretHeaders), not in values" $.path $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "true" when the agent runs as a native sidecar. */}}
{{- define "auditrail-sidecar.native" -}}
{{- $v := fromYaml (include "auditrail-sidecar.values" .) -}}
{{- if eq $v.mode "native" -}}true
{{- else if eq $v.mode "auto" -}}
{{- if semverCompare ">=1.29-0" .root.Capabilities.KubeVersion.Version -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{- define "auditrail-sidecar.configMapName" -}}
{{- printf "%s-auditrail-agent" .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
