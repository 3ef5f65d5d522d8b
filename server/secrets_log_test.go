package server_test

// Secrets in logs: a representative scenario (creates, regenerates with and
// without grace, 401s with real-looking tokens, JWTs, 4xx, 500s) with the
// server logging at debug level; then every log line and the SQLite files are
// scanned for every secret issued, every token and Authorization value sent,
// and the 32-character random part of every key.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

func TestNoSecretsInLogs(t *testing.T) {
	logs := &hxLockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	inner, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	flaky := &hxFlakyStore{Store: inner}
	env := testenv.New(t, testenv.Config{Logger: logger, Store: flaky})
	const acctL = "acct_logs"
	mk := env.Bootstrap(acctL)
	env.Bootstrap("acct_logs_other")

	// needles: what must never be logged or stored, with a description.
	needles := map[string]string{}
	secret := func(s, what string) {
		needles[s] = what
		switch {
		case keys.Classify(s) == keys.KindJWT:
			needles[s[strings.LastIndex(s, ".")+1:]] = what + " (JWT signature)"
		case len(s) >= 40:
			needles[s[8:40]] = what + " (random part)"
		}
	}
	// ids: the key ids the access log may name as key_id (public, like
	// the accounts).
	ids := map[string]bool{}
	for mode, m := range mk {
		secret(m.Secret, string(mode)+" managed secret")
		secret(m.Publishable, string(mode)+" managed publishable")
		ids[m.SecretID], ids[m.PublishableID] = true, true
	}
	// misplaced: secrets a careless client puts in the URL instead of the header.
	misplaced := map[string]string{}

	httpc := &http.Client{Timeout: 10 * time.Second}
	requests := 0
	do := func(method, path, authz, ctype, body string) (int, []byte) {
		t.Helper()
		var rd *strings.Reader
		if body != "" {
			rd = strings.NewReader(body)
		} else {
			rd = strings.NewReader("")
		}
		req, err := http.NewRequestWithContext(ctx, method, env.Root+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if authz != "" {
			req.Header.Set("Authorization", authz)
			needles[authz] = "Authorization header value"
			if _, tok, ok := strings.Cut(authz, " "); ok && len(tok) >= 20 {
				secret(tok, "token sent")
			} else if len(authz) >= 20 {
				secret(authz, "token sent without a scheme")
			}
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		res, b := hxDo(t, httpc, req) //nolint:bodyclose // hxDo reads and closes the body
		requests++
		if res.StatusCode < 300 {
			var env cfAPIKeyEnvelope
			if err := json.Unmarshal(b, &env); err == nil && env.Data.Key != "" {
				secret(env.Data.Key, "issued "+env.Data.ID)
				ids[env.Data.ID] = true
			}
		}
		return res.StatusCode, b
	}
	want := func(got, want int, what string, body []byte) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: %d, want %d: %.300s", what, got, want, body)
		}
	}
	create := "/v1/api-keys/?account_id=" + acctL
	sb, live := mk[apikey.Sandbox], mk[apikey.Live]
	bearer := func(s string) string { return "Bearer " + s }

	// Creates, in both modes, and by a created key (which holds every permission).
	st, b := do("POST", create, bearer(sb.Secret), "application/json", `{"name":"log a","permissions":`+hxAllPermissionsJSON+`,"metadata":{"team":"logs"}}`)
	want(st, 201, "create", b)
	var child cfAPIKeyEnvelope
	if err := json.Unmarshal(b, &child); err != nil {
		t.Fatal(err)
	}
	st, b = do("POST", create, bearer(live.Secret), "application/json", `{"name":"log b","permissions":{},"expires_at":"2031-01-01T00:00:00Z"}`)
	want(st, 201, "live create", b)
	st, b = do("POST", create, bearer(child.Data.Key), "application/json", `{"name":"log c","permissions":{"payment":["read"]}}`)
	want(st, 201, "create by a created key", b)
	st, b = do("POST", create, "bearer "+sb.Secret, "application/json", `{"name":"log d","permissions":{}}`)
	want(st, 201, "lower-case scheme", b)

	// Regenerates: without grace (the old secret dies), with grace, by a custom key.
	st, b = do("POST", "/v1/api-keys/"+sb.PublishableID+"/regenerate", bearer(sb.Secret), "", "")
	want(st, 200, "regenerate publishable", b)
	st, b = do("POST", "/v1/api-keys/"+live.SecretID+"/regenerate", bearer(live.Secret), "application/json", `{"grace_period_minutes":30}`)
	want(st, 200, "regenerate with grace", b)
	st, b = do("POST", "/v1/api-keys/"+live.SecretID+"/regenerate", bearer(live.Secret), "", "")
	want(st, 403, "regenerate with the previous secret in grace (it manages nothing)", b)
	// A custom key holding every permission may rotate the managed secret key.
	st, b = do("POST", "/v1/api-keys/"+sb.SecretID+"/regenerate", bearer(child.Data.Key), "", "")
	want(st, 200, "regenerate by a custom key", b)
	var sbRotated cfAPIKeyEnvelope
	if err := json.Unmarshal(b, &sbRotated); err != nil {
		t.Fatal(err)
	}

	// 401s with real-looking tokens.
	forged, _ := keys.New(keys.KindSecret, true)
	forgedLive, _ := keys.New(keys.KindPublishable, false)
	badSum := sb.Secret[:len(sb.Secret)-1] + map[bool]string{true: "A", false: "B"}[strings.HasSuffix(sb.Secret, "B")]
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreignJWT, _ := jwt.NewWithClaims(jwt.SigningMethodES256, env.JWT.Claims("mallory", []string{acctL}, []string{"account:api:key:create"}, "test")).SignedString(otherKey)
	expired := env.JWT.Claims("ops", []string{acctL}, []string{"account:api:key:create"}, "test")
	expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
	garbage := "GarbageToken" + strings.Repeat("x9Q", 12)
	for _, c := range []struct{ what, authz string }{
		{"superseded publishable secret", bearer(sb.Publishable)},
		{"superseded sandbox secret", bearer(sb.Secret)},
		{"well-formed unknown secret", bearer(forged)},
		{"well-formed unknown publishable", bearer(forgedLive)},
		{"bad checksum", bearer(badSum)},
		{"mode swapped", bearer(strings.Replace(child.Data.Key, "_test_", "_live_", 1))},
		{"foreign JWT", bearer(foreignJWT)},
		{"expired JWT", bearer(env.JWT.Sign(t, expired))},
		{"garbage", bearer(garbage)},
		{"Basic credentials", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+garbage))},
		{"secret without a scheme", child.Data.Key},
		{"token over 4096 bytes", bearer("sk_test_" + strings.Repeat("Zq7", 1500))},
	} {
		st, b := do("POST", create, c.authz, "application/json", `{"name":"nope","permissions":{}}`)
		want(st, 401, c.what, b)
	}

	// JWTs that work.
	jwtTok := env.JWT.Sign(t, env.JWT.Claims("ops@example.com", []string{acctL}, []string{"account:api:key:create", "account:api:key:update", "account:api:key:verify", "payment:read",
		"account:read", "customer:read", "refund:read", "webhook:read"}, "test")) // what the publishable key holds, and more
	st, b = do("POST", create, bearer(jwtTok), "application/json", `{"name":"log jwt","permissions":{"payment":["read"]}}`)
	want(st, 201, "JWT create", b)
	st, b = do("POST", "/v1/api-keys/"+sb.PublishableID+"/regenerate", bearer(jwtTok), "", "")
	want(st, 200, "JWT regenerate", b)

	cur := sbRotated.Data.Key
	// The lifecycle: read, list, update, disable, revoke, audit, by the rotated secret.
	st, b = do("POST", create, bearer(cur), "application/json", `{"name":"log lifecycle","permissions":{"account:api:key":["read"]}}`)
	want(st, 201, "create for the lifecycle", b)
	var life cfAPIKeyEnvelope
	if err := json.Unmarshal(b, &life); err != nil {
		t.Fatal(err)
	}
	st, b = do("GET", "/v1/api-keys/"+life.Data.ID, bearer(cur), "", "")
	want(st, 200, "get", b)
	st, b = do("GET", "/v1/api-keys/?account_id="+acctL+"&limit=2", bearer(cur), "", "")
	want(st, 200, "list", b)
	st, b = do("PATCH", "/v1/api-keys/"+life.Data.ID, bearer(cur), "application/json", `{"name":"log lifecycle 2","status":"INACTIVE"}`)
	want(st, 200, "update", b)
	// Verify carries the key it verifies in the body: never logged either.
	verify := func(key string) string { return `{"key":"` + key + `","permissions":{"account:api:key":["read"]}}` }
	st, b = do("POST", "/v1/api-keys/verify", bearer(cur), "application/json", verify(life.Data.Key))
	want(st, 200, "verify", b)
	st, b = do("DELETE", "/v1/api-keys/"+life.Data.ID, bearer(cur), "", "")
	want(st, 200, "delete", b)
	st, b = do("POST", "/v1/api-keys/verify", bearer(cur), "application/json", verify(life.Data.Key))
	want(st, 200, "verify a revoked key", b)
	st, b = do("POST", "/v1/api-keys/verify", bearer(cur), "application/json", verify(forged))
	want(st, 200, "verify an unknown key", b)
	st, b = do("POST", "/v1/api-keys/verify", bearer(cur), "application/json", `{"key":"`+forged+`","secret":"`+forged+`"}`)
	want(st, 400, "verify with an unknown field", b)
	st, b = do("GET", "/v1/audit-events?account_id="+acctL, bearer(cur), "", "")
	want(st, 200, "audit events", b)
	st, b = do("GET", "/v1/api-keys/"+life.Data.ID, bearer(life.Data.Key), "", "")
	want(st, 401, "revoked secret", b)

	// 4xx with valid credentials.
	for _, c := range []struct {
		what, method, path, ctype, body string
		status                          int
	}{
		{"validation", "POST", create, "application/json", `{"name":"","permissions":{}}`, 400},
		{"malformed JSON", "POST", create, "application/json", `{"name":`, 400},
		{"unknown permission", "POST", create, "application/json", `{"name":"x","permissions":{"nuclear":["launch"]}}`, 422},
		{"duplicate name", "POST", create, "application/json", `{"name":"log a","permissions":{}}`, 409},
		{"foreign account", "POST", "/v1/api-keys/?account_id=acct_logs_other", "application/json", `{"name":"x","permissions":{}}`, 403},
		{"unknown key", "POST", "/v1/api-keys/key_unknown0/regenerate", "", "", 404},
		{"custom key", "POST", "/v1/api-keys/" + child.Data.ID + "/regenerate", "", "", 422},
		{"wrong content type", "POST", create, "text/plain", `{"name":"x","permissions":{}}`, 415},
		{"no route", "GET", "/v1/nope", "", "", 404},
		{"wrong method", "DELETE", "/v1/api-keys/", "", "", 405},
	} {
		st, b := do(c.method, c.path, bearer(cur), c.ctype, c.body)
		want(st, c.status, c.what, b)
	}
	st, b = do("POST", create, bearer(cur), "application/json", `{"name":"creator only","permissions":{"account:api:key":["create"]}}`)
	want(st, 201, "create a key that may only create", b)
	var creator cfAPIKeyEnvelope
	if err := json.Unmarshal(b, &creator); err != nil {
		t.Fatal(err)
	}
	st, b = do("POST", create, bearer(creator.Data.Key), "application/json", `{"name":"x","permissions":{"refund":["create"]}}`)
	want(st, 403, "escalation", b)
	// Secrets misplaced in the URL by a careless client (the key instead of
	// its id, or in the query): the log must not keep them either.
	inPath, _ := keys.New(keys.KindSecret, false)
	inQuery, _ := keys.New(keys.KindSecret, true)
	misplaced[inPath] = "secret sent as the key id in the path"
	misplaced[inQuery] = "secret sent in the query"
	st, b = do("POST", "/v1/api-keys/"+inPath+"/regenerate", bearer(cur), "", "")
	want(st, 400, "secret as the id", b)
	st, b = do("POST", create+"&api_key="+inQuery, bearer(cur), "application/json", `{"name":"x","permissions":{}}`)
	want(st, 400, "secret in the query", b)

	// 500s: the store fails for the token lookup, then inside a regenerate's transaction.
	flaky.state.Store(hxDown)
	st, b = do("POST", create, bearer(cur), "application/json", `{"name":"during outage","permissions":{}}`)
	want(st, 500, "store down", b)
	// A token never seen before: one already known to be unknown is answered
	// from the credential cache's negative entries without the store.
	unseen, _ := keys.New(keys.KindSecret, true)
	misplaced[unseen] = "secret verified while the store is down"
	st, b = do("POST", "/v1/api-keys/verify", bearer(jwtTok), "application/json", verify(unseen))
	want(st, 500, "store down for verify", b)
	flaky.state.Store(hxWritesDown)
	st, b = do("POST", "/v1/api-keys/"+sb.PublishableID+"/regenerate", bearer(cur), "", "")
	want(st, 500, "store write failure", b)
	flaky.state.Store(hxUp)
	env.FlushUsage()

	// Every log line, scanned.
	out := logs.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	accessLines, withKey, withAccount := 0, 0, 0
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON: %.200s", i, line)
		}
		if rec["msg"] == "request" {
			accessLines++
			// The principal's key_id and account_id: public identifiers,
			// only ever a key this scenario issued and its account, and
			// never on a request that failed authentication.
			if id, ok := rec["key_id"]; ok {
				withKey++
				if s, _ := id.(string); !ids[s] {
					t.Errorf("log line %d: key_id %v is not the id of a key issued here: %.300s", i, id, line)
				}
			}
			if acct, ok := rec["account_id"]; ok {
				withAccount++
				if acct != acctL {
					t.Errorf("log line %d: account_id %v, want %s: %.300s", i, acct, acctL, line)
				}
			}
			if _, failed := rec["auth_failure"]; failed && (rec["key_id"] != nil || rec["account_id"] != nil) {
				t.Errorf("log line %d: a failed authentication names a principal: %.300s", i, line)
			}
		}
		for n, what := range needles {
			if strings.Contains(line, n) {
				t.Errorf("log line %d contains a %s: %.300s", i, what, line)
			}
		}
		for n, what := range misplaced {
			if strings.Contains(line, n) || strings.Contains(line, n[8:40]) {
				hxKnownBug(t, "log line %d contains a %s: the access log records the raw path (%.200s)", i, what, line)
			}
		}
	}
	if accessLines != requests {
		t.Errorf("%d access log lines for %d requests", accessLines, requests)
	}
	// Most requests authenticated with a key; the JWTs' lines name the account only.
	if withKey < requests/2 || withAccount <= withKey {
		t.Errorf("%d access lines name a key_id and %d an account_id of %d requests: want most, and the JWTs' too", withKey, withAccount, requests)
	}
	if !strings.Contains(out, `"level":"ERROR"`) || !strings.Contains(out, "auth_failure") {
		t.Errorf("the scenario did not log its errors and auth failures:\n%s", out)
	}
	// And the database files (WAL included).
	var files []string
	for _, name := range sqlite.FileNames {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if _, err := os.Stat(filepath.Join(dir, name+suffix)); err == nil {
				files = append(files, filepath.Join(dir, name+suffix))
			}
		}
	}
	if len(files) < 2 {
		t.Fatalf("database files: %v", files)
	}
	hxScanFiles(t, files, needles)
	hxScanFiles(t, files, misplaced)
	t.Logf("%d requests, %d log lines (%d bytes), %d files scanned for %d secrets, tokens and header values",
		requests, len(lines), len(out), len(files), len(needles)+len(misplaced))
	if testing.Verbose() {
		var sample bytes.Buffer
		for _, l := range lines[:min(3, len(lines))] {
			fmt.Fprintln(&sample, l)
		}
		t.Logf("sample log lines:\n%s", sample.String())
	}
}

// hxAllPermissionsJSON is every permission in the catalog, as a create body's permissions.
const hxAllPermissionsJSON = `{"account":["read","update"],"account:api:key":["create","read","update","delete","verify"],` +
	`"customer":["create","read","update","delete"],"payment":["create","read","update","cancel"],` +
	`"refund":["create","read"],"webhook":["create","read","update","delete"],"account:audit":["read"]}`

// TestSecretsInURLsNeverLogged sends real keys and JWTs where a careless
// client (or an attacker probing) puts them in the URL: whole and partial
// path segments of known and unknown routes, the query string of known and
// unknown routes, percent-encoded once or twice, even the method. No log
// line may hold a token or its distinctive part, however the line is decoded.
func TestSecretsInURLsNeverLogged(t *testing.T) {
	logs := &hxLockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	env := testenv.New(t, testenv.Config{Logger: logger})
	const acctU = "acct_urls"
	mk := env.Bootstrap(acctU)
	auth := "Bearer " + mk[apikey.Sandbox].Secret
	pubID := mk[apikey.Sandbox].PublishableID

	// Fresh tokens of every kind, never sent as credentials.
	var toks []string
	for _, kind := range []keys.Kind{keys.KindSecret, keys.KindPublishable} {
		for _, sandbox := range []bool{false, true} {
			k, err := keys.New(kind, sandbox)
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, k)
		}
	}
	toks = append(toks, env.JWT.Sign(t, env.JWT.Claims("url@example.com", []string{acctU}, []string{"account:api:key:create"}, "test")))
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreign, _ := jwt.NewWithClaims(jwt.SigningMethodES256, env.JWT.Claims("mallory", []string{acctU}, nil, "test")).SignedString(otherKey)
	toks = append(toks, foreign)
	needles := map[string]string{}
	for _, tok := range toks {
		needles[tok] = "token"
		if keys.Classify(tok) == keys.KindJWT {
			parts := strings.Split(tok, ".")
			needles[parts[1]] = "JWT payload"
			needles[parts[2]] = "JWT signature"
		} else {
			needles[tok[8:40]] = "key's random part"
		}
	}

	spellings := func(tok string) []string {
		first := fmt.Sprintf("%%%02X%%%02X", tok[0], tok[1]) + tok[2:]
		return []string{
			tok,
			strings.ReplaceAll(tok, "_", "%5F"),   // sk%5Ftest%5F…
			strings.ReplaceAll(tok, "_", "%255F"), // encoded twice: reaches the router as sk%5Ftest%5F…
			strings.ReplaceAll(tok, ".", "%2E"),
			strings.ReplaceAll(tok, ".", "%252E"),
			first, // %73%6B_test_…
		}
	}
	create := "/v1/api-keys/?account_id=" + acctU
	frames := []string{
		// path, unknown routes: whole segment, glued, after a dot, outside /v1
		"/v1/%s", "/v1/x-%s", "/v1/%s/regenerate", "/v1/nope/foo.%s/bar", "/v1/a%sz",
		"/%s", "/docs/%s", "/metrics/%s", "/V1/API-KEYS/%s/regenerate",
		// path, known route (the id position): whole and partial
		"/v1/api-keys/%s/regenerate", "/v1/api-keys/foo.%s/regenerate", "/v1/api-keys/x%sy/regenerate",
		// query of known and unknown routes
		create + "&api_key=%s", create + "&q=foo.%s", "/v1/api-keys/?account_id=%s",
		"/v1/api-keys/" + pubID + "/regenerate?key=%s", "/v1/nope?token=%s", "/healthz?key=%s", "/nope?x-%s",
	}
	httpc := &http.Client{Timeout: 10 * time.Second}
	requests := 0
	send := func(method, url string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(`{"name":"url","permissions":{}}`))
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		res, b := hxDo(t, httpc, req) //nolint:bodyclose // hxDo reads and closes the body
		requests++
		if res.StatusCode >= 500 || res.StatusCode < 400 {
			t.Errorf("%s %s: %d, want a 4xx: %.200s", method, url, res.StatusCode, b)
		}
	}
	for _, tok := range toks {
		for _, spelled := range spellings(tok) {
			for _, frame := range frames {
				send("POST", env.Root+fmt.Sprintf(frame, spelled))
			}
		}
		if keys.Classify(tok) != keys.KindJWT {
			send(tok, env.Root+"/v1/api-keys/") // a token as the method: a valid HTTP token
		}
	}

	out := logs.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	access := 0
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %d is not JSON: %.200s", i, line)
		}
		if rec["msg"] == "request" {
			access++
		}
		decoded := hxUnescapeAll(line)
		for n, what := range needles {
			if strings.Contains(line, n) || strings.Contains(decoded, n) {
				t.Errorf("log line %d holds a %s: %.300s", i, what, line)
			}
		}
	}
	if access != requests {
		t.Errorf("%d access log lines for %d requests", access, requests)
	}
	// Still useful: matched routes log their template, unknown paths their shape.
	for _, want := range []string{`"path":"/v1/api-keys/{id}/regenerate"`, `"path":"/v1/x-{redacted}"`, `"path":"/v1/nope/foo.{redacted}/bar"`, `"method":"{redacted}"`} {
		if !strings.Contains(out, want) {
			t.Errorf("no log line has %s", want)
		}
	}
	t.Logf("%d requests, %d log lines scanned for %d needles", requests, len(lines), len(needles))
}

// hxUnescapeAll decodes every valid percent escape, repeatedly, so a needle
// is found however many times its log line encoded it.
func hxUnescapeAll(s string) string {
	for range 5 {
		var b strings.Builder
		changed := false
		for i := 0; i < len(s); i++ {
			if s[i] == '%' && i+2 < len(s) {
				if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					changed = true
					continue
				}
			}
			b.WriteByte(s[i])
		}
		if !changed {
			break
		}
		s = b.String()
	}
	return s
}
