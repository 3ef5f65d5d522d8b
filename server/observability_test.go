package server_test

// Observability (issue 20): the request's trace with its store spans and no
// secret, and the metric names the shipped dashboard and alert rules use,
// held to what /metrics really serves.

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

func attrsOf(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// TestTraceCreateHasStoreSpansAndNoSecret: a create is one server span named
// by its route template, with the operation and status, whose children are
// the store's units of work; a read of a key by id is named by the template,
// not the id; and no span's name, attribute or event holds a secret, its
// hash, or the token that authenticated the request.
func TestTraceCreateHasStoreSpansAndNoSecret(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(ctx) })
	env := testenv.New(t, testenv.Config{Tracer: tp})
	const acct = "acct_traced"
	m := env.Bootstrap(acct)[apikey.Sandbox]
	c := env.Client(m.Secret)
	k, err := c.CreateAPIKey(ctx, acct, client.CreateAPIKeyRequest{Name: "traced", Permissions: client.Permissions{"payment": {"read"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	// A token pasted into the path: the span is still named by the template.
	if _, err := c.GetAPIKey(ctx, m.Secret); err == nil {
		t.Fatal("a secret as a key id found a key")
	}

	spans := rec.Ended()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("span names: %q", names)

	creates := byName["POST /v1/api-keys/"]
	if len(creates) != 1 {
		t.Fatalf("%d spans named %q, want 1 (names: %q)", len(creates), "POST /v1/api-keys/", names)
	}
	req := creates[0]
	a := attrsOf(req)
	if req.SpanKind() != trace.SpanKindServer || a["hsrcpay.operation"] != "createApiKey" ||
		a["http.response.status_code"] != "201" || a["http.route"] != "/v1/api-keys/" || a["http.request.method"] != "POST" {
		t.Errorf("create span: kind %v, attributes %v", req.SpanKind(), a)
	}
	var units []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Parent().SpanID() == req.SpanContext().SpanID() && s.Name() == "store InTx" {
			units = append(units, s)
		}
	}
	if len(units) == 0 {
		t.Fatalf("the create's span has no store InTx child")
	}
	for _, u := range units {
		ua := attrsOf(u)
		if u.SpanContext().TraceID() != req.SpanContext().TraceID() || ua["db.operation.name"] != "InTx" ||
			ua["hsrcpay.store.outcome"] != "ok" || ua["db.system.name"] != "sqlite" || ua["hsrcpay.mode"] != string(apikey.Sandbox) {
			t.Errorf("unit span: %v", ua)
		}
	}
	gets := byName["GET /v1/api-keys/{id}"]
	if len(gets) != 2 {
		t.Errorf("%d spans named GET /v1/api-keys/{id}, want 2 (one found, one refused)", len(gets))
	}
	for _, g := range gets {
		if s := attrsOf(g)["http.response.status_code"]; s != "200" && s != "400" && s != "404" {
			t.Errorf("get span status %s", s)
		}
	}

	// No secret anywhere: the bootstrap secret (the bearer token), the key
	// created, their hashes, the ids in paths.
	secrets := map[string]string{"bearer secret": m.Secret, "created secret": k.Key, "created key id": k.ID}
	for what, s := range map[string]string{"bearer secret": m.Secret, "created secret": k.Key} {
		h := keys.Hash(s)
		secrets[what+" hash (hex)"] = hex.EncodeToString(h)
		secrets[what+" hash (base64)"] = base64.StdEncoding.EncodeToString(h)
		secrets[what+" hash (base64url)"] = base64.RawURLEncoding.EncodeToString(h)
	}
	for _, s := range spans {
		texts := []string{s.Name(), s.Status().Description}
		for _, kv := range s.Attributes() {
			texts = append(texts, string(kv.Key), kv.Value.String())
		}
		for _, ev := range s.Events() {
			texts = append(texts, ev.Name)
			for _, kv := range ev.Attributes {
				texts = append(texts, kv.Value.String())
			}
		}
		for _, kv := range s.Resource().Attributes() {
			texts = append(texts, kv.Value.String())
		}
		for _, text := range texts {
			for what, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("span %q carries the %s: %q", s.Name(), what, text)
				}
			}
		}
	}
}

// metricRE finds the metric names in PromQL: the service's own series.
var metricRE = regexp.MustCompile(`hsrcpay_[a-z_]+`)

// usedMetricNames are the metric names the dashboard's expressions and the
// alert rules use.
func usedMetricNames(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	dash, err := os.ReadFile("../deploy/observability/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	exprs := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs++
			for _, n := range metricRE.FindAllString(tg.Expr, -1) {
				used[n] = append(used[n], "dashboard: "+p.Title)
			}
		}
	}
	alerts, err := os.ReadFile("../deploy/observability/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules := 0
	sc := bufio.NewScanner(strings.NewReader(string(alerts)))
	alert := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if name, ok := strings.CutPrefix(line, "- alert: "); ok {
			alert, rules = name, rules+1
		}
		for _, n := range metricRE.FindAllString(line, -1) {
			used[n] = append(used[n], "alert: "+alert)
		}
	}
	if exprs < 15 || rules < 6 || len(used) < 15 {
		t.Fatalf("%d dashboard expressions, %d alert rules, %d metric names: the files were not read as meant", exprs, rules, len(used))
	}
	return used
}

// scrapeNames GETs /metrics from the metrics handler (as the metrics
// listener serves it) and returns the sample names it holds.
func scrapeNames(t *testing.T, env *testenv.Env, into map[string]bool) {
	t.Helper()
	ms := httptest.NewServer(env.Server.MetricsHandler())
	defer ms.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ms.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }() // read whole below
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		into[name] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// traffic makes the requests whose series the dashboard and the alerts
// read: creates (keyed: claimed, then replayed), a rename (a local
// invalidation), a 404, 429s, and a readiness check.
func traffic(t *testing.T, env *testenv.Env, acct string) *client.Client {
	t.Helper()
	m := env.Bootstrap(acct)[apikey.Sandbox]
	c := env.Client(m.Secret)
	req := client.CreateAPIKeyRequest{Name: "observed", Permissions: client.Permissions{"payment": {"read"}}}
	k, err := c.CreateAPIKey(ctx, acct, req, client.WithIdempotencyKey("observed-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAPIKey(ctx, acct, req, client.WithIdempotencyKey("observed-1")); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if _, err := c.UpdateAPIKey(ctx, k.ID, client.Rename("observed-renamed")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetAPIKey(ctx, "key_doesnotexist000000000000"); err == nil {
		t.Fatal("found a key that does not exist")
	}
	if got := readyzStatus(t, env); got != http.StatusOK {
		t.Fatalf("readyz %d", got)
	}
	// A token that is no key: 401, an authentication failure.
	if _, err := env.Client("sk_test_notakey").GetAPIKey(ctx, k.ID); err == nil {
		t.Fatal("a made-up token was accepted")
	}
	// Over the sandbox credential budget (set to 8/s by the caller): 429,
	// spent by the key just created (refused 403 until then: it may not
	// read keys), so that the account's managed key keeps its budget.
	limited := false
	other := env.Client(k.Key)
	for range 40 {
		_, err := other.GetAPIKey(ctx, k.ID)
		var ce *client.Error
		if errors.As(err, &ce) && ce.StatusCode == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("40 requests at an 8/s budget: no 429")
	}
	return c
}

// TestObservabilityMetricNames: every metric name the shipped dashboard
// and alert rules use is served on /metrics, scraped from real servers
// after real traffic: a SQLite server, and a PostgreSQL one (the pool's
// series) whose database the test stops (503s, failed readiness).
func TestObservabilityMetricNames(t *testing.T) {
	used := usedMetricNames(t)
	budget := map[apikey.Mode]int{apikey.Live: 8, apikey.Sandbox: 8}
	served := map[string]bool{}

	lite := testenv.New(t, testenv.Config{Metrics: metrics.New(), RateLimits: budget})
	traffic(t, lite, "acct_observed_lite")
	scrapeNames(t, lite, served)

	st, proxy, _ := pgBehindProxy(t, "")
	pg := testenv.New(t, testenv.Config{Store: st, Metrics: metrics.New(), RateLimits: budget})
	c := traffic(t, pg, "acct_observed_pg")
	proxy.Stop()
	_, err := c.CreateAPIKey(ctx, "acct_observed_pg", newKey("while stopped"))
	wantUnavailable(t, "create with PostgreSQL stopped", err)
	if got := readyzStatus(t, pg); got != http.StatusServiceUnavailable {
		t.Errorf("readyz with PostgreSQL stopped: %d, want 503", got)
	}
	proxy.Start()
	scrapeNames(t, pg, served)

	var missing []string
	for name, where := range used {
		if served[name] {
			continue
		}
		// A histogram's base name stands for its _bucket, _sum and _count.
		if served[name+"_bucket"] {
			continue
		}
		missing = append(missing, name+" (used by "+strings.Join(slices.Compact(where), "; ")+")")
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("not served on /metrics: %s", m)
	}
	// The series this issue added, served by name (not only through the files).
	for _, name := range []string{"hsrcpay_sqlite_wal_bytes", "hsrcpay_store_pool_connections", "hsrcpay_idempotency_requests_total",
		"hsrcpay_readiness_checks_total", "hsrcpay_store_unavailable_total", "hsrcpay_sqlite_writer_queue"} {
		if !served[name] {
			t.Errorf("%s is not served", name)
		}
	}
}
