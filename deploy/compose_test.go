package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of the compose specification the checks read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	User        string            `yaml:"user"`
	ReadOnly    bool              `yaml:"read_only"`
	CapDrop     []string          `yaml:"cap_drop"`
	Ports       []string          `yaml:"ports"`
	Secrets     []struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	} `yaml:"secrets"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

// loadCompose reads deploy/compose.yaml; yaml.v3 resolves its anchors and
// merge keys (<<) as compose does.
func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// TestComposeUsesOnlyServerVariables: every HSRCPAY_* variable the compose
// file sets is one the server reads (config.Variables), so none is a typo or
// an invention that would silently do nothing.
func TestComposeUsesOnlyServerVariables(t *testing.T) {
	c := loadCompose(t)
	known := serverVariables()
	n := 0
	for name, svc := range c.Services {
		for v := range svc.Environment {
			if !strings.HasPrefix(v, "HSRCPAY_") {
				continue
			}
			n++
			if !known[v] {
				t.Errorf("service %s sets %s, which the server does not read (internal/config Variables)", name, v)
			}
		}
	}
	if n == 0 {
		t.Fatal("no HSRCPAY_* variable found in compose.yaml: the file's shape changed under the test")
	}
}

// TestComposeScaleOut: the README's scale-out on one host: PostgreSQL,
// Redis, the migration run once before two replicas of one image that share
// the store, Redis and the idempotency key file, each on its own ports.
func TestComposeScaleOut(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"postgres", "redis", "migrate"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
	migrate := c.Services["migrate"]
	if !slices.Equal(migrate.Command, []string{"migrate", "up"}) {
		t.Errorf("migrate runs %q, want [migrate up]", migrate.Command)
	}
	if migrate.DependsOn["postgres"].Condition != "service_healthy" {
		t.Errorf("migrate does not wait for a healthy postgres: %+v", migrate.DependsOn)
	}

	var replicas []string
	for name, svc := range c.Services {
		if slices.Equal(svc.Command, []string{"serve"}) {
			replicas = append(replicas, name)
		}
	}
	slices.Sort(replicas)
	if len(replicas) != 2 {
		t.Fatalf("serving replicas %v, want 2", replicas)
	}
	ports := map[string]string{}
	for _, name := range replicas {
		svc := c.Services[name]
		env := svc.Environment
		if svc.Image != migrate.Image || !strings.Contains(svc.Image, "hsrcpay-server") {
			t.Errorf("%s runs image %q, migrate %q: want the same hsrcpay-server image", name, svc.Image, migrate.Image)
		}
		if env["HSRCPAY_DATABASE_URL"] != migrate.Environment["HSRCPAY_DATABASE_URL"] || !strings.HasPrefix(env["HSRCPAY_DATABASE_URL"], "postgres://") ||
			!strings.Contains(env["HSRCPAY_DATABASE_URL"], "@postgres:5432/") {
			t.Errorf("%s: HSRCPAY_DATABASE_URL=%q, want the postgres service's, as migrate's (%q)", name, env["HSRCPAY_DATABASE_URL"], migrate.Environment["HSRCPAY_DATABASE_URL"])
		}
		if !strings.HasPrefix(env["HSRCPAY_REDIS_URL"], "redis://redis:6379/") {
			t.Errorf("%s: HSRCPAY_REDIS_URL=%q, want the redis service", name, env["HSRCPAY_REDIS_URL"])
		}
		if env["HSRCPAY_MIGRATE"] != "off" {
			t.Errorf("%s: HSRCPAY_MIGRATE=%q, want off (the migrate service migrates)", name, env["HSRCPAY_MIGRATE"])
		}
		if env["HSRCPAY_ADDR"] != "0.0.0.0:8080" || env["HSRCPAY_METRICS_ADDR"] != "0.0.0.0:9090" {
			t.Errorf("%s: listens on %q and %q, want 0.0.0.0:8080 and 0.0.0.0:9090 (the image's ports)", name, env["HSRCPAY_ADDR"], env["HSRCPAY_METRICS_ADDR"])
		}
		if _, ok := env["HSRCPAY_TRUSTED_PROXIES"]; !ok {
			t.Errorf("%s: no HSRCPAY_TRUSTED_PROXIES", name)
		}
		keyFile := env["HSRCPAY_IDEMPOTENCY_KEY_FILE"]
		mounted := false
		for _, s := range svc.Secrets {
			if s.Target == keyFile && c.Secrets[s.Source].File != "" {
				mounted = true
			}
		}
		if keyFile == "" || !mounted {
			t.Errorf("%s: HSRCPAY_IDEMPOTENCY_KEY_FILE=%q is not a mounted secret file (%+v)", name, keyFile, svc.Secrets)
		}
		if svc.DependsOn["migrate"].Condition != "service_completed_successfully" {
			t.Errorf("%s does not wait for the migration to succeed: %+v", name, svc.DependsOn)
		}
		if svc.User != "65532:65532" || !svc.ReadOnly || !slices.Contains(svc.CapDrop, "ALL") {
			t.Errorf("%s: user %q, read_only %v, cap_drop %v: want 65532:65532, a read-only root, ALL dropped", name, svc.User, svc.ReadOnly, svc.CapDrop)
		}
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %q beyond loopback", name, p)
			}
			host := strings.Join(strings.Split(p, ":")[:2], ":")
			if other, dup := ports[host]; dup {
				t.Errorf("%s and %s both publish %s", other, name, host)
			}
			ports[host] = name
		}
	}
}
