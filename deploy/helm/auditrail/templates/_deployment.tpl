{{/*
auditrail.deployment: the aggregator's Deployment for one role.
  include "auditrail.deployment" (dict "root" $ "component" "aggregator|query"
                                       "c" <values of the component> "role" "all|consumer|query")
*/}}
{{- define "auditrail.deployment" -}}
{{- $root := .root -}}
{{- $c := .c -}}
{{- $component := .component -}}
{{- $name := printf "%s-%s" (include "auditrail.fullname" $root) $component | trunc 63 | trimSuffix "-" -}}
{{- $configKey := ternary "query.yaml" "aggregator.yaml" (eq .role "query") -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "auditrail.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $component }}
spec:
  {{- if not $c.autoscaling.enabled }}
  replicas: {{ $c.replicas | int }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # one at a time: each leaving consumer commits and leaves the group
      maxUnavailable: 1
      maxSurge: 0
  selector:
    matchLabels:
      {{- include "auditrail.selectorLabels" $root | nindent 6 }}
      app.kubernetes.io/component: {{ $component }}
  template:
    metadata:
      labels:
        {{- include "auditrail.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ $component }}
        {{- with $c.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # a configuration change rolls the pods
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- with $c.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "auditrail.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext: {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds | int }}
      {{- with $c.nodeSelector }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.tolerations }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}
      affinity:
        {{- if $c.affinity }}
        {{- toYaml $c.affinity | nindent 8 }}
        {{- else }}
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "auditrail.selectorLabels" $root | nindent 20 }}
                    app.kubernetes.io/component: {{ $component }}
        {{- end }}
      topologySpreadConstraints:
        {{- if $c.topologySpreadConstraints }}
        {{- toYaml $c.topologySpreadConstraints | nindent 8 }}
        {{- else }}
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "auditrail.selectorLabels" $root | nindent 14 }}
              app.kubernetes.io/component: {{ $component }}
        {{- end }}
      containers:
        - name: {{ $component }}
          image: {{ include "auditrail.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            - /usr/bin/auditrail-aggregator
            - --config
            - /etc/auditrail/{{ $configKey }}
            - --role
            - {{ .role }}
          {{- $env := include "auditrail.secretEnv" $root | trim }}
          {{- if or $env $c.extraEnv }}
          env:
            {{- with $env }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with $c.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ $c.port | int }}
              protocol: TCP
            {{- if eq .role "query" }}
            - name: query
              containerPort: {{ $c.apiPort | int }}
              protocol: TCP
            {{- end }}
          startupProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: {{ $c.probes.startup.periodSeconds | int }}
            failureThreshold: {{ $c.probes.startup.failureThreshold | int }}
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: {{ $c.probes.readiness.periodSeconds | int }}
            failureThreshold: {{ $c.probes.readiness.failureThreshold | int }}
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: {{ $c.probes.liveness.periodSeconds | int }}
            failureThreshold: {{ $c.probes.liveness.failureThreshold | int }}
          resources: {{- toYaml $c.resources | nindent 12 }}
          securityContext: {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - {name: config, mountPath: /etc/auditrail, readOnly: true}
            - {name: tmp, mountPath: /tmp}
            {{- with (include "auditrail.secretVolumeMounts" $root | trim) }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with $c.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: config
          configMap:
            name: {{ include "auditrail.fullname" $root }}
        # the root filesystem is read-only; libraries that want a scratch
        # file get a small one
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
        {{- with (include "auditrail.secretVolumes" $root | trim) }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with $c.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end -}}
