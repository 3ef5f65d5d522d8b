package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The Helm chart's tests render deploy/helm/hsrcpay with the pinned Helm
// (`make chart-check` builds it into bin/ and sets HSRCPAY_REQUIRE_HELM=1)
// and read the manifests: what a cluster would be given, not the templates.

type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		// PodDisruptionBudget
		MaxUnavailable any `yaml:"maxUnavailable"`
		MinAvailable   any `yaml:"minAvailable"`
	} `yaml:"spec"`
	Data map[string]string `yaml:"data"`
	raw  map[string]any
}

type podSpec struct {
	AutomountServiceAccountToken *bool `yaml:"automountServiceAccountToken"`
	SecurityContext              struct {
		RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
		RunAsUser      *int  `yaml:"runAsUser"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	TerminationGracePeriodSeconds int         `yaml:"terminationGracePeriodSeconds"`
	RestartPolicy                 string      `yaml:"restartPolicy"`
	Containers                    []container `yaml:"containers"`
	Volumes                       []struct {
		Name     string `yaml:"name"`
		EmptyDir *struct {
		} `yaml:"emptyDir"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
			Items      []struct {
				Key  string `yaml:"key"`
				Path string `yaml:"path"`
			} `yaml:"items"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type container struct {
	Name            string   `yaml:"name"`
	Image           string   `yaml:"image"`
	Args            []string `yaml:"args"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// env returns the value of a plain variable and whether it is set that way.
func (c container) env(name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name && e.Value != nil {
			return *e.Value, true
		}
	}
	return "", false
}

// secretEnv returns the Secret and key a variable is read from.
func (c container) secretEnv(name string) (from, key string, ok bool) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key, true
		}
	}
	return "", "", false
}

// mountedFile says whether path is a file the pod mounts from a Secret's key,
// and from which Secret.
func mountedFile(p podSpec, c container, path string) (from string, ok bool) {
	for _, m := range c.VolumeMounts {
		rel, found := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !found {
			continue
		}
		for _, v := range p.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == rel {
					return v.Secret.SecretName, m.ReadOnly
				}
			}
		}
	}
	return "", false
}

// helmBinary is the pinned Helm: HSRCPAY_HELM, else bin/helm. The test
// skips without it unless HSRCPAY_REQUIRE_HELM=1.
func helmBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("HSRCPAY_HELM")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		if required("HSRCPAY_REQUIRE_HELM") {
			t.Fatalf("helm: %v (make helm installs the pinned one)", err)
		}
		t.Skipf("no helm at %s (make helm; HSRCPAY_REQUIRE_HELM=1 makes this a failure)", bin)
	}
	return bin
}

// render runs helm template on the chart with the CI values plus args and
// returns the manifests by kind/name, or helm's error output.
func render(t *testing.T, args ...string) (map[string]manifest, error) {
	t.Helper()
	root := repoRoot(t)
	chart := filepath.Join(root, "deploy", "helm", "hsrcpay")
	all := append([]string{"template", "rel", chart}, args...)
	cmd := exec.CommandContext(t.Context(), helmBinary(t), all...) //nolint:gosec // the pinned Helm, with the test's own arguments
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(stderr.String())
	}
	out := map[string]manifest{}
	dec := yaml.NewDecoder(&stdout)
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered manifests: %v", err)
		}
		var m manifest
		if err := node.Decode(&m); err != nil {
			t.Fatalf("rendered manifest: %v", err)
		}
		if m.Kind == "" {
			continue // an empty document (a disabled template)
		}
		if err := node.Decode(&m.raw); err != nil {
			t.Fatal(err)
		}
		out[m.Kind+"/"+m.Metadata.Name] = m
	}
	return out, nil
}

func mustRender(t *testing.T, args ...string) map[string]manifest {
	t.Helper()
	ms, err := render(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %s", args, err)
	}
	return ms
}

func ciValues(t *testing.T) []string {
	return []string{"-f", filepath.Join(repoRoot(t), "deploy", "helm", "hsrcpay", "ci", "test-values.yaml")}
}

func get(t *testing.T, ms map[string]manifest, key string) manifest {
	t.Helper()
	m, ok := ms[key]
	if !ok {
		keys := make([]string, 0, len(ms))
		for k := range ms {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		t.Fatalf("no %s rendered; got %v", key, keys)
	}
	return m
}

// checkHardened: non-root, no privilege escalation, read-only root, every
// capability dropped, seccomp RuntimeDefault, no service-account token.
func checkHardened(t *testing.T, what string, p podSpec, c container) {
	t.Helper()
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem not true", what)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation not false", what)
	}
	if !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities.drop %v, want ALL", what, sc.Capabilities.Drop)
	}
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (p.SecurityContext.RunAsNonRoot != nil && *p.SecurityContext.RunAsNonRoot)
	if !nonRoot || p.SecurityContext.RunAsUser == nil || *p.SecurityContext.RunAsUser == 0 {
		t.Errorf("%s: not forced to a non-root user (runAsNonRoot %v, runAsUser %v)", what, p.SecurityContext.RunAsNonRoot, p.SecurityContext.RunAsUser)
	}
	if p.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("%s: seccompProfile %q, want RuntimeDefault", what, p.SecurityContext.SeccompProfile.Type)
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Errorf("%s: mounts a service-account token it never uses", what)
	}
	tmp := false
	for _, m := range c.VolumeMounts {
		tmp = tmp || m.MountPath == "/tmp"
	}
	if !tmp {
		t.Errorf("%s: no writable /tmp beside the read-only root", what)
	}
}

// TestChartDeployment: the Deployment of the CI values has what the chart
// promises (values.yaml): replicas, hardening, the store and Redis URLs from
// the Secret, the idempotency key as a mounted Secret file, both probes, the
// metrics port, resources, the trusted proxies, and serve without migrating.
func TestChartDeployment(t *testing.T) {
	ms := mustRender(t, append(ciValues(t), "--set", "replicaCount=3", "--set", "image.tag=v9.9.9")...)
	d := get(t, ms, "Deployment/rel-hsrcpay")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3 (replicaCount)", d.Spec.Replicas)
	}
	p := d.Spec.Template.Spec
	if len(p.Containers) != 1 {
		t.Fatalf("containers: %d", len(p.Containers))
	}
	c := p.Containers[0]
	if !strings.HasSuffix(c.Image, ":v9.9.9") || !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("runs %s %v, want the image.tag and serve", c.Image, c.Args)
	}
	checkHardened(t, "Deployment", p, c)

	for _, v := range []struct{ name, key string }{{"HSRCPAY_DATABASE_URL", "database-url"}, {"HSRCPAY_REDIS_URL", "redis-url"}} {
		from, key, ok := c.secretEnv(v.name)
		if !ok || from != "rel-hsrcpay" || key != v.key {
			t.Errorf("%s from secret %q key %q (%v), want rel-hsrcpay/%s", v.name, from, key, ok, v.key)
		}
		if _, plain := c.env(v.name); plain {
			t.Errorf("%s also set in plain text", v.name)
		}
	}
	keyFile, _ := c.env("HSRCPAY_IDEMPOTENCY_KEY_FILE")
	if from, ro := mountedFile(p, c, keyFile); from != "rel-hsrcpay" || !ro {
		t.Errorf("HSRCPAY_IDEMPOTENCY_KEY_FILE=%q is not a read-only file of the Secret (got %q, read-only %v)", keyFile, from, ro)
	}
	if v, _ := c.env("HSRCPAY_MIGRATE"); v != "off" {
		t.Errorf("HSRCPAY_MIGRATE=%q, want off: the Job migrates", v)
	}
	if v, _ := c.env("HSRCPAY_TRUSTED_PROXIES"); v != "10.0.0.0/8" {
		t.Errorf("HSRCPAY_TRUSTED_PROXIES=%q, want the values' 10.0.0.0/8", v)
	}
	if _, ok := c.env("HSRCPAY_SECRET_SCANNING_KEYS_FILE"); ok {
		t.Error("secret scanning on without a source")
	}

	ports := map[string]int{}
	for _, port := range c.Ports {
		ports[port.Name] = port.ContainerPort
	}
	if addr, _ := c.env("HSRCPAY_ADDR"); ports["http"] != 8080 || addr != "0.0.0.0:8080" {
		t.Errorf("API port %d, HSRCPAY_ADDR=%q: want 8080 on every interface", ports["http"], addr)
	}
	if addr, _ := c.env("HSRCPAY_METRICS_ADDR"); ports["http-metrics"] != 9090 || addr != "0.0.0.0:9090" {
		t.Errorf("metrics port %d, HSRCPAY_METRICS_ADDR=%q: want 9090 on every interface", ports["http-metrics"], addr)
	}
	if a := d.Spec.Template.Metadata.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "9090" || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v", a)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe.HTTPGet.Port != "http" {
		t.Errorf("liveness probe %+v, want GET /healthz on http", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port != "http" {
		t.Errorf("readiness probe %+v, want GET /readyz on http", c.ReadinessProbe)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	// SIGTERM drains then finishes requests: the kubelet must wait longer.
	if p.TerminationGracePeriodSeconds <= 5+15 {
		t.Errorf("terminationGracePeriodSeconds %d does not cover the drain (5s) and shutdown timeout (15s)", p.TerminationGracePeriodSeconds)
	}
	if d.Spec.Template.Metadata.Annotations["checksum/secret"] == "" {
		t.Error("no checksum/secret: a changed Secret would not roll the replicas")
	}
}

// TestChartEnvIsServerVariables: every HSRCPAY_* variable any rendered
// workload sets is one the server reads, with extra settings (config) and
// secret scanning on.
func TestChartEnvIsServerVariables(t *testing.T) {
	known := serverVariables()
	for _, extra := range [][]string{
		nil,
		{"--set", "secretScanning.existingSecret=gh-keys", "--set", "config.HSRCPAY_RATE_LIMIT_LIVE=200"},
		{"--set", "secretScanning.keysURL=https://api.github.com/meta/public_keys/secret_scanning", "--set", "metrics.enabled=false"},
	} {
		ms := mustRender(t, append(ciValues(t), extra...)...)
		n := 0
		for name, m := range ms {
			for _, c := range m.Spec.Template.Spec.Containers {
				for _, e := range c.Env {
					n++
					if !known[e.Name] {
						t.Errorf("%v: %s container %s sets %s, which the server does not read (internal/config Variables)", extra, name, c.Name, e.Name)
					}
				}
			}
		}
		if n == 0 {
			t.Fatalf("%v: no environment rendered", extra)
		}
	}
}

// TestChartSecretScanning: a Secret named for GitHub's keys is mounted
// read-only and named by HSRCPAY_SECRET_SCANNING_KEYS_FILE; a URL is passed
// as HSRCPAY_SECRET_SCANNING_KEYS_URL; both at once are refused.
func TestChartSecretScanning(t *testing.T) {
	ms := mustRender(t, append(ciValues(t), "--set", "secretScanning.existingSecret=gh-keys", "--set", "config.HSRCPAY_RATE_LIMIT_LIVE=200")...)
	d := get(t, ms, "Deployment/rel-hsrcpay")
	p := d.Spec.Template.Spec
	c := p.Containers[0]
	file, ok := c.env("HSRCPAY_SECRET_SCANNING_KEYS_FILE")
	if from, ro := mountedFile(p, c, file); !ok || from != "gh-keys" || !ro {
		t.Errorf("HSRCPAY_SECRET_SCANNING_KEYS_FILE=%q is not a read-only file of gh-keys (got %q)", file, from)
	}
	if v, _ := c.env("HSRCPAY_RATE_LIMIT_LIVE"); v != "200" {
		t.Errorf("config.HSRCPAY_RATE_LIMIT_LIVE rendered as %q", v)
	}

	const url = "https://api.github.com/meta/public_keys/secret_scanning"
	ms = mustRender(t, append(ciValues(t), "--set", "secretScanning.keysURL="+url)...)
	c = get(t, ms, "Deployment/rel-hsrcpay").Spec.Template.Spec.Containers[0]
	if v, _ := c.env("HSRCPAY_SECRET_SCANNING_KEYS_URL"); v != url {
		t.Errorf("HSRCPAY_SECRET_SCANNING_KEYS_URL=%q", v)
	}
	if _, err := render(t, append(ciValues(t), "--set", "secretScanning.existingSecret=gh-keys", "--set", "secretScanning.keysURL="+url)...); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both sources: %v, want refused", err)
	}
}

// TestChartMigrationJob: `migrate up` runs as a pre-install/pre-upgrade hook,
// after the chart's Secret, with the Deployment's store URL and hardening,
// and its pod is never selected by the Service or the disruption budget.
func TestChartMigrationJob(t *testing.T) {
	ms := mustRender(t, ciValues(t)...)
	j := get(t, ms, "Job/rel-hsrcpay-migrate")
	hooks := strings.Split(j.Metadata.Annotations["helm.sh/hook"], ",")
	slices.Sort(hooks)
	if !slices.Equal(hooks, []string{"pre-install", "pre-upgrade"}) {
		t.Errorf("helm.sh/hook %v, want pre-install,pre-upgrade", hooks)
	}
	s := get(t, ms, "Secret/rel-hsrcpay")
	if !strings.Contains(s.Metadata.Annotations["helm.sh/hook"], "pre-install") ||
		!(hookWeight(t, s) < hookWeight(t, j)) {
		t.Errorf("the chart's Secret (hook %q weight %q) is not created before the Job (weight %q)",
			s.Metadata.Annotations["helm.sh/hook"], s.Metadata.Annotations["helm.sh/hook-weight"], j.Metadata.Annotations["helm.sh/hook-weight"])
	}
	p := j.Spec.Template.Spec
	c := p.Containers[0]
	if !slices.Equal(c.Args, []string{"migrate", "up"}) || p.RestartPolicy != "Never" {
		t.Errorf("Job runs %v (restartPolicy %q), want migrate up, Never", c.Args, p.RestartPolicy)
	}
	d := get(t, ms, "Deployment/rel-hsrcpay")
	if c.Image != d.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("Job image %s, Deployment's %s", c.Image, d.Spec.Template.Spec.Containers[0].Image)
	}
	if from, key, ok := c.secretEnv("HSRCPAY_DATABASE_URL"); !ok || from != "rel-hsrcpay" || key != "database-url" {
		t.Errorf("Job's HSRCPAY_DATABASE_URL from %q/%q", from, key)
	}
	checkHardened(t, "Job", p, c)

	jobLabels := j.Spec.Template.Metadata.Labels
	for _, key := range []string{"Service/rel-hsrcpay", "Service/rel-hsrcpay-metrics"} {
		sel := map[string]string{}
		for k, v := range get(t, ms, key).raw["spec"].(map[string]any)["selector"].(map[string]any) {
			sel[k] = v.(string)
		}
		if selects(sel, jobLabels) {
			t.Errorf("%s selects the migration pod (%v)", key, sel)
		}
		if !selects(sel, d.Spec.Template.Metadata.Labels) {
			t.Errorf("%s does not select the API pods (%v)", key, sel)
		}
	}
	pdb := get(t, ms, "PodDisruptionBudget/rel-hsrcpay")
	if selects(pdb.Spec.Selector.MatchLabels, jobLabels) || !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
		t.Errorf("PodDisruptionBudget selector %v", pdb.Spec.Selector.MatchLabels)
	}

	ms = mustRender(t, append(ciValues(t), "--set", "migration.enabled=false")...)
	if _, ok := ms["Job/rel-hsrcpay-migrate"]; ok {
		t.Error("migration.enabled=false still renders the Job")
	}
}

func hookWeight(t *testing.T, m manifest) int {
	t.Helper()
	var w int
	if err := yaml.Unmarshal([]byte(m.Metadata.Annotations["helm.sh/hook-weight"]), &w); err != nil {
		t.Fatalf("%s hook weight: %v", m.Metadata.Name, err)
	}
	return w
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestChartServices: the API's Service carries the API only; metrics have a
// Service of their own; the disruption budget keeps replicas up.
func TestChartServices(t *testing.T) {
	ms := mustRender(t, ciValues(t)...)
	api := get(t, ms, "Service/rel-hsrcpay")
	if len(api.Spec.Ports) != 1 || api.Spec.Ports[0].TargetPort != "http" {
		t.Errorf("API Service ports %+v, want http only", api.Spec.Ports)
	}
	m := get(t, ms, "Service/rel-hsrcpay-metrics")
	if len(m.Spec.Ports) != 1 || m.Spec.Ports[0].TargetPort != "http-metrics" || m.Spec.Ports[0].Port != 9090 {
		t.Errorf("metrics Service ports %+v", m.Spec.Ports)
	}
	pdb := get(t, ms, "PodDisruptionBudget/rel-hsrcpay")
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		t.Error("PodDisruptionBudget bounds nothing")
	}
	ms = mustRender(t, append(ciValues(t), "--set", "metrics.enabled=false")...)
	if _, ok := ms["Service/rel-hsrcpay-metrics"]; ok {
		t.Error("metrics.enabled=false still renders the metrics Service")
	}
	c := get(t, ms, "Deployment/rel-hsrcpay").Spec.Template.Spec.Containers[0]
	if v, ok := c.env("HSRCPAY_METRICS_ADDR"); !ok || v != "" {
		t.Errorf("metrics off: HSRCPAY_METRICS_ADDR=%q (set %v), want empty (no listener)", v, ok)
	}
}

// TestChartExistingSecret: with the operator's Secret the chart creates none
// and stores no credential in the release.
func TestChartExistingSecret(t *testing.T) {
	ms := mustRender(t, "--set", "secrets.existingSecret=ops-hsrcpay")
	for k := range ms {
		if strings.HasPrefix(k, "Secret/") {
			t.Errorf("rendered %s beside an existing Secret", k)
		}
	}
	d := get(t, ms, "Deployment/rel-hsrcpay")
	p := d.Spec.Template.Spec
	c := p.Containers[0]
	if from, _, _ := c.secretEnv("HSRCPAY_DATABASE_URL"); from != "ops-hsrcpay" {
		t.Errorf("HSRCPAY_DATABASE_URL from %q, want ops-hsrcpay", from)
	}
	keyFile, _ := c.env("HSRCPAY_IDEMPOTENCY_KEY_FILE")
	if from, _ := mountedFile(p, c, keyFile); from != "ops-hsrcpay" {
		t.Errorf("idempotency key from %q, want ops-hsrcpay", from)
	}
	j := get(t, ms, "Job/rel-hsrcpay-migrate")
	if from, _, _ := j.Spec.Template.Spec.Containers[0].secretEnv("HSRCPAY_DATABASE_URL"); from != "ops-hsrcpay" {
		t.Errorf("Job's HSRCPAY_DATABASE_URL from %q", from)
	}
}

// TestChartRefusesIncompleteValues: values that would give replicas that
// cannot start, or run them unsafely, fail the render with what to set.
func TestChartRefusesIncompleteValues(t *testing.T) {
	key := "secrets.idempotencyKey=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "secrets.databaseURL"},
		{[]string{"--set", "secrets.databaseURL=sqlite:/data/db", "--set", "secrets.redisURL=redis://r:6379/0", "--set", key}, "PostgreSQL"},
		{[]string{"--set", "secrets.databaseURL=postgres://db/x", "--set", key}, "secrets.redisURL"},
		{[]string{"--set", "secrets.databaseURL=postgres://db/x", "--set", "secrets.redisURL=redis://r:6379/0"}, "secrets.idempotencyKey"},
		{[]string{"--set", "secrets.existingSecret=s", "--set", "config.HSRCPAY_MIGRATE=auto"}, "set by the chart"},
		{[]string{"--set", "secrets.existingSecret=s", "--set", "config.LOG_LEVEL=debug"}, "only HSRCPAY_"},
	} {
		_, err := render(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a refusal naming %q", tc.args, err, tc.want)
		}
	}
	// Redis off: no URL needed, none passed.
	ms := mustRender(t, "--set", "secrets.databaseURL=postgres://db/x", "--set", key, "--set", "redis.enabled=false")
	if _, _, ok := get(t, ms, "Deployment/rel-hsrcpay").Spec.Template.Spec.Containers[0].secretEnv("HSRCPAY_REDIS_URL"); ok {
		t.Error("redis.enabled=false still reads HSRCPAY_REDIS_URL")
	}
}
