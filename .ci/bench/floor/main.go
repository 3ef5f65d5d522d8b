// Command floor is the load test's physical floor (issue 19): a bare Echo v4
// server on the real store that, per route, runs only the statements the
// operation cannot do without, with the real driver and pool settings, and
// writes an answer of the real shape. load.sh runs each of its routes with
// the same wrk script and connections as the real row it stands beside (the
// *_floor rows), so the table shows how close the real server comes to what
// this stack can physically reach. It is a benchmark tool: built only by the
// scripts (`go build -o X .ci/bench/floor/main.go`); nothing imports it.
//
//	floor -db sqlite:DIR|postgres://… [-mode test] [-addr A] [-metrics A] [-pprof A]
//
// What every route leaves out, compared with the real server: authentication
// of the caller (the Authorization header is not read), request and response
// validation, rate limits, the access log, request ids, idempotency, tracing,
// the per-request store timeout (queries run on context.Background, so a
// request wrk abandons still completes and is counted as answered), error
// envelopes beyond a bare status, and policy (who may act on what). What each
// route does and leaves out besides is said at the route.
//
// The store is opened through the repository's store packages (sqlite.Open /
// postgres.OpenOptions), so the schema is the migrated one; on PostgreSQL the
// floor uses that store's own pool (its size, timeouts and pgx's cache of
// prepared statements). On SQLite the store's connections are not exported:
// the floor closes the store after the migration and opens a read pool and
// one write connection with the pragmas internal/store/sqlite/sqlite.go gives
// its readers and its writer (kept in step by hand: sqliteReaderPragmas,
// sqliteWriterPragmas). It may run beside a real server on the same store
// (SQLite's WAL and PostgreSQL share it): load.sh starts it next to the real
// server of a run, idle while the floor is measured.
//
// Its metrics port serves what load.sh's scrape reads: the Go heap's
// go_memstats_alloc_bytes_total and go_memstats_mallocs_total, and
// hsrcpay_http_requests_total by status.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	sqlite3 "modernc.org/sqlite" // the real store's driver

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/namekey"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18490", "listen address")
	metricsAddr := flag.String("metrics", "", "side port for /metrics (load.sh's scrape)")
	pprofAddr := flag.String("pprof", "", "side port for net/http/pprof (profiles of the floor)")
	db := flag.String("db", "", "the store: sqlite:DIR or postgres://… (HSRCPAY_DATABASE_URL's form)")
	modeName := flag.String("mode", "test", "the accounts' mode: live or test")
	sync := flag.String("sqlite-synchronous", "NORMAL", "SQLite's synchronous pragma (as HSRCPAY_SQLITE_SYNCHRONOUS)")
	usageEvery := flag.Duration("usage-flush", 5*time.Second, "how often verify's uses are written (HSRCPAY_USAGE_FLUSH_INTERVAL's default)")
	flag.Parse()
	mode := apikey.Mode(*modeName)
	if *db == "" || (mode != apikey.Live && mode != apikey.Sandbox) {
		flag.Usage()
		os.Exit(2)
	}
	f, err := open(context.Background(), *db, mode, *sync)
	if err != nil {
		log.Fatal("floor: ", err)
	}
	go f.flushUsage(*usageEvery)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(f.count)
	e.GET("/v1/api-keys/:id", f.getKey)
	e.GET("/v1/api-keys/", f.listKeys)
	e.GET("/v1/audit-events", f.listEvents)
	e.POST("/v1/api-keys/", f.createKey)
	e.POST("/v1/api-keys/:id/regenerate", f.regenerateKey)
	e.POST("/v1/api-keys/verify", f.verifyKey)
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })

	if *metricsAddr != "" {
		go serveSide(*metricsAddr, http.HandlerFunc(f.metrics))
	}
	if *pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		go serveSide(*pprofAddr, mux)
	}
	srv := &http.Server{Addr: *addr, Handler: e, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func serveSide(addr string, h http.Handler) {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// floor is the store the routes run on: SQLite's handles, or PostgreSQL's pool.
type floor struct {
	mode apikey.Mode
	lite *liteStore
	pg   *pgStore

	statuses [600]atomic.Int64 // answers by status, for /metrics

	usageMu sync.Mutex
	usage   map[string]usage // verify's uses not written yet, the latest per key
}

type usage struct {
	at time.Time
	ip string
}

func open(ctx context.Context, dbURL string, mode apikey.Mode, sync string) (*floor, error) {
	kind, loc, err := config.ParseDatabaseURL(dbURL)
	if err != nil {
		return nil, err
	}
	f := &floor{mode: mode, usage: map[string]usage{}}
	switch kind {
	case config.SQLite:
		f.lite, err = openLite(ctx, loc, mode, sync)
	case config.Postgres:
		f.pg, err = openPG(ctx, loc, mode)
	default:
		err = fmt.Errorf("unknown store %q", kind)
	}
	return f, err
}

// count is the only middleware: the answers by status, as the real server's
// hsrcpay_http_requests_total counts them.
func (f *floor) count(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		if s := c.Response().Status; s > 0 && s < len(f.statuses) {
			f.statuses[s].Add(1)
		}
		return nil
	}
}

func (f *floor) metrics(w http.ResponseWriter, _ *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var b strings.Builder
	fmt.Fprintf(&b, "go_memstats_alloc_bytes_total %d\ngo_memstats_mallocs_total %d\n", ms.TotalAlloc, ms.Mallocs)
	for s := range f.statuses {
		if n := f.statuses[s].Load(); n > 0 {
			fmt.Fprintf(&b, "hsrcpay_http_requests_total{status=\"%d\"} %d\n", s, n)
		}
	}
	_, _ = w.Write([]byte(b.String()))
}

// --- answers -----------------------------------------------------------------------------

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// send writes b (the whole answer) in one Write, as the real server's appended answers go.
func send(c echo.Context, status int, b []byte) error {
	w := c.Response()
	w.Header()[echo.HeaderContentType] = jsonContentType
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}

var jsonContentType = []string{echo.MIMEApplicationJSON}

// row is a key's columns as a read returned them, in keyFields order; null
// marks a NULL. Times are RFC 3339 text (SQLite stores them so; PostgreSQL's
// text output is rewritten by appendTime).
type row struct {
	v    [nKeyFields][]byte
	null [nKeyFields]bool
	pg   bool // PostgreSQL's text forms (times, booleans "t"/"f")
}

// The columns a key's answer is made of (its view: render_reads.go's
// appendKeyView), in this order in every floor read.
const (
	fID = iota
	fAccount
	fName
	fType
	fPermissions
	fMetadata
	fStatus
	fManaged
	fDeleted
	fLastUsedAt
	fLastUsedIP
	fExpiresAt
	fCreatedAt
	fUpdatedAt
	fPrevExpiresAt
	fByKind
	fByID
	fByRequest
	fHint
	fNetworks
	fRateLimit
	fRateWindow
	fCredits
	nKeyFields
)

const keyViewColumns = `id, account_id, name, type, permissions, metadata, status, managed, deleted,
	last_used_at, last_used_ip, expires_at, created_at, updated_at, prev_secret_expires_at,
	created_by_kind, created_by_id, created_by_request, key_hint, allowed_networks, rate_limit, rate_window_seconds, credits_remaining`

// nullableView are the columns of keyViewColumns that may be NULL.
var nullableView = [nKeyFields]bool{fLastUsedAt: true, fLastUsedIP: true, fExpiresAt: true, fPrevExpiresAt: true, fHint: true, fCredits: true}

func (r *row) bool(i int) bool { return len(r.v[i]) > 0 && (r.v[i][0] == '1' || r.v[i][0] == 't') }

// appendTime appends a time column as a JSON string: SQLite's text is RFC
// 3339 already; PostgreSQL's ("2006-01-02 15:04:05.999999+00") is made so.
func (r *row) appendTime(b []byte, i int) []byte {
	if r.null[i] {
		return append(b, "null"...)
	}
	v := r.v[i]
	b = append(b, '"')
	if !r.pg || len(v) < 20 {
		b = append(b, v...)
		return append(b, '"')
	}
	b = append(b, v[:10]...)
	b = append(b, 'T')
	rest := v[11:]
	if j := strings.LastIndexAny(string(rest), "+-"); j > 0 {
		b = append(b, rest[:j]...)
		if off := rest[j:]; string(off) == "+00" {
			b = append(b, 'Z')
		} else {
			b = append(b, off...)
			if len(off) == 3 {
				b = append(b, ":00"...)
			}
		}
	} else {
		b = append(b, rest...)
	}
	return append(b, '"')
}

// appendKeyView appends a key's answer object (the fields of the real
// view, in its order). It leaves out what the real view computes: the
// permissions and metadata are the stored JSON as stored (the real server
// decodes and re-encodes them, sorted), an expired status is not derived,
// a previous secret's end is shown whether or not it has passed, and credits
// show their stored remainder without a refill.
func appendKeyView(b []byte, r *row, secret string) []byte {
	b = append(b, `{"account_id":`...)
	b = appendString(b, r.v[fAccount])
	if n := r.v[fNetworks]; len(n) > 0 {
		b = append(b, `,"allowed_networks":[`...)
		for i, p := range strings.Split(string(n), ",") {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, []byte(p))
		}
		b = append(b, ']')
	}
	b = append(b, `,"created_at":`...)
	b = r.appendTime(b, fCreatedAt)
	b = append(b, `,"created_by":{"id":`...)
	b = appendString(b, r.v[fByID])
	b = append(b, `,"kind":`...)
	b = appendString(b, r.v[fByKind])
	b = append(b, `,"request_id":`...)
	b = appendString(b, r.v[fByRequest])
	b = append(b, '}')
	if !r.null[fCredits] {
		b = append(b, `,"credits":{"remaining":`...)
		b = append(b, r.v[fCredits]...)
		b = append(b, '}')
	}
	b = append(b, `,"deleted":`...)
	b = strconv.AppendBool(b, r.bool(fDeleted))
	b = append(b, `,"expires_at":`...)
	b = r.appendTime(b, fExpiresAt)
	b = append(b, `,"id":`...)
	b = appendString(b, r.v[fID])
	if secret != "" {
		b = append(b, `,"key":`...)
		b = appendString(b, []byte(secret))
	}
	b = append(b, `,"key_hint":`...)
	if r.null[fHint] {
		b = append(b, "null"...)
	} else {
		b = appendString(b, r.v[fHint])
	}
	b = append(b, `,"last_used_at":`...)
	b = r.appendTime(b, fLastUsedAt)
	b = append(b, `,"last_used_ip":`...)
	if r.null[fLastUsedIP] {
		b = append(b, "null"...)
	} else {
		b = appendString(b, r.v[fLastUsedIP])
	}
	b = append(b, `,"managed":`...)
	b = strconv.AppendBool(b, r.bool(fManaged))
	b = append(b, `,"metadata":`...)
	b = append(b, r.v[fMetadata]...)
	b = append(b, `,"name":`...)
	b = appendString(b, r.v[fName])
	b = append(b, `,"object":"api_key","permissions":`...)
	b = append(b, r.v[fPermissions]...)
	b = append(b, `,"previous_key_expires_at":`...)
	b = r.appendTime(b, fPrevExpiresAt)
	if l := r.v[fRateLimit]; len(l) > 0 && string(l) != "0" {
		w, _ := strconv.ParseInt(string(r.v[fRateWindow]), 10, 64)
		b = append(b, `,"rate_limit":{"limit":`...)
		b = append(b, l...)
		b = append(b, `,"window":`...)
		b = appendString(b, []byte((&apikey.RateLimit{Window: time.Duration(w) * time.Second}).WindowString()))
		b = append(b, '}')
	}
	b = append(b, `,"status":`...)
	b = appendString(b, r.v[fStatus])
	b = append(b, `,"type":`...)
	b = appendString(b, r.v[fType])
	b = append(b, `,"updated_at":`...)
	b = r.appendTime(b, fUpdatedAt)
	return append(b, '}')
}

// appendString appends s as a JSON string with encoding/json's escapes
// (HTML-safe); the common case, nothing to escape, is one copy.
func appendString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError && r != '\u2028' && r != '\u2029' {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, `\u202`...)
				b = append(b, "0123456789abcdef"[r&0xF])
			}
			i += size
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xF])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const envelopeEnd = `,"message":"success","success":true}` + "\n"

// clientIP is the peer's address, as the real server records it for a verify's use.
func clientIP(c echo.Context) string {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return c.Request().RemoteAddr
	}
	return host
}

// --- routes ------------------------------------------------------------------------------

// getKey: GET /v1/api-keys/{id}. One read of the key's row by its primary
// key (only the columns its answer shows), and the envelope. Left out: the
// caller's authentication and the check that it may see the key's account.
func (f *floor) getKey(c echo.Context) error {
	bp := buffers.Get().(*[]byte) //nolint:forcetypeassert // the pool holds only these
	defer buffers.Put(bp)
	b := append((*bp)[:0], `{"data":`...)
	var found bool
	var err error
	if f.lite != nil {
		b, found, err = f.lite.getKey(b, c.Param("id"))
	} else {
		b, found, err = f.pg.getKey(b, c.Param("id"))
	}
	if err != nil {
		return err
	}
	if !found {
		return c.NoContent(http.StatusNotFound)
	}
	*bp = append(b, envelopeEnd...)
	return send(c, http.StatusOK, *bp)
}

// listKeys: GET /v1/api-keys/?account_id=…&limit=N. The first page of the
// account's keys not deleted, in the real list's keyset order (created_at,
// id) through the same index, one row more than the page to know whether
// more follow. Left out: the caller's authentication and account check,
// other filters and cursors than none (the rows' first page), and the empty
// page's check that the account exists.
func (f *floor) listKeys(c echo.Context) error {
	return f.page(c, 20, f.lite.listKeys, f.pg.listKeys)
}

// page answers a list route: the page of up to limit (else def) rows that
// the store's appender adds after the envelope's opening.
func (f *floor) page(c echo.Context, def int, lite, pg func([]byte, string, int) ([]byte, error)) error {
	limit, _ := strconv.Atoi(c.QueryParam("limit"))
	if limit <= 0 || limit > 100 {
		limit = def
	}
	bp := buffers.Get().(*[]byte) //nolint:forcetypeassert // the pool holds only these
	defer buffers.Put(bp)
	b := append((*bp)[:0], `{"data":{"data":[`...)
	var err error
	if f.lite != nil {
		b, err = lite(b, c.QueryParam("account_id"), limit)
	} else {
		b, err = pg(b, c.QueryParam("account_id"), limit)
	}
	if err != nil {
		return err
	}
	*bp = append(b, `,"object":"list"}`+envelopeEnd...)
	return send(c, http.StatusOK, *bp)
}

// appendCursor ends a page: has_more and the next cursor (the last row's
// created_at and id, base64url as the real cursor is; the real one turns the
// time into nanoseconds first).
func appendCursor(b []byte, more bool, last ...[]byte) []byte {
	b = append(b, `],"has_more":`...)
	if !more {
		return append(b, `false,"next_cursor":null`...)
	}
	var raw []byte
	raw = append(raw, "k:"...)
	for i, p := range last {
		if i > 0 {
			raw = append(raw, ':')
		}
		raw = append(raw, p...)
	}
	b = append(b, `true,"next_cursor":"`...)
	b = base64.RawURLEncoding.AppendEncode(b, raw)
	return append(b, '"')
}

// listEvents: GET /v1/audit-events?account_id=…&limit=N. The newest page of
// the account's audit events by its primary key (account_id, seq), one more
// row than the page. Left out: authentication and the account check, and
// the changes' canonical form (the stored JSON goes out as stored: SQLite
// stores it canonical; PostgreSQL's jsonb text is valid JSON but not
// encoding/json's bytes, which the real server re-forms).
func (f *floor) listEvents(c echo.Context) error {
	return f.page(c, 100, f.lite.listEvents, f.pg.listEvents)
}

// event is an audit event's columns, in eventColumns order.
const eventColumns = `account_id, seq, id, mode, action, key_id, actor_kind, actor_id, request_id, client_ip, created_at, changes, prev_hash, hash`

const nEventFields = 14

// appendEvent appends one event as the real page's event object.
func appendEvent(b []byte, v *[nEventFields][]byte, pg bool) []byte {
	b = append(b, `{"account_id":`...)
	b = appendString(b, v[0])
	b = append(b, `,"action":`...)
	b = appendString(b, v[4])
	b = append(b, `,"actor":{"id":`...)
	b = appendString(b, v[7])
	b = append(b, `,"kind":`...)
	b = appendString(b, v[6])
	b = append(b, `,"request_id":`...)
	b = appendString(b, v[8])
	b = append(b, `},"changes":`...)
	b = append(b, v[11]...)
	b = append(b, `,"client_ip":`...)
	b = appendString(b, v[9])
	b = append(b, `,"created_at":`...)
	r := row{pg: pg}
	r.v[0] = v[10]
	b = r.appendTime(b, 0)
	b = append(b, `,"hash":`...)
	b = appendString(b, v[13])
	b = append(b, `,"id":`...)
	b = appendString(b, v[2])
	b = append(b, `,"key_id":`...)
	b = appendString(b, v[5])
	b = append(b, `,"mode":`...)
	b = appendString(b, v[3])
	b = append(b, `,"object":"audit_event","prev_hash":`...)
	b = appendString(b, v[12])
	b = append(b, `,"seq":`...)
	b = append(b, v[1]...)
	return append(b, '}')
}

// createBody is create.lua's body (the fields the floor stores).
type createBody struct {
	Name        string              `json:"name"`
	Permissions map[string][]string `json:"permissions"`
	Metadata    map[string]string   `json:"metadata"`
	ExpiresAt   *time.Time          `json:"expires_at"`
}

// newKey is a create's or a rotation's minted secret and what is stored of it.
type newKey struct {
	id, secret, hint string
	hash             []byte
}

func mint(withID bool, sandbox bool) (newKey, error) {
	var k newKey
	var err error
	if k.secret, err = keys.New(keys.KindSecret, sandbox); err != nil {
		return k, err
	}
	if withID {
		if k.id, err = keys.NewID(); err != nil {
			return k, err
		}
	}
	k.hash, k.hint = keys.Hash(k.secret), keys.Hint(k.secret)
	return k, nil
}

// created is a create's key, as written.
type created struct {
	newKey
	account, name, nameKey, perms, meta string
	expires                             *time.Time
	now                                 time.Time
	eventID, changes                    string
}

// createKey: POST /v1/api-keys/?account_id=…. Decode the body, mint the
// secret and ids (random id, secret, SHA-256, hint), and one transaction
// that writes exactly the real create's rows: the key row (its indexes, and
// the schema's live-key trigger on the account row), the audit event row,
// and the account row's audit head. Then the answer with the secret. Left
// out: authentication, the caller's re-read and lock (policy.Recheck),
// validation of the name, permissions and metadata, the active-key cap, the
// release of an expired key's name, idempotency, and the audit chain: the
// event's hash is SHA-256 over the previous head and the changes, not the
// real canonical form (audit.Event.Seal). On SQLite the transactions are
// group-committed by one writer like the real store's, without its
// savepoint per unit (a failure fails the batch) and without its caches; on
// PostgreSQL it is one pipelined round trip (BEGIN, the key, the event with
// the head read and moved under the account's row lock in one statement, the
// commit with synchronous_commit off and the durability barrier the real
// store waits on), where the real create takes two.
func (f *floor) createKey(c echo.Context) error {
	var in createBody
	if err := json.NewDecoder(c.Request().Body).Decode(&in); err != nil || in.Name == "" {
		return c.NoContent(http.StatusBadRequest)
	}
	k, err := mint(true, f.mode == apikey.Sandbox)
	if err != nil {
		return err
	}
	perms, err := json.Marshal(in.Permissions)
	if err != nil {
		return err
	}
	if in.Metadata == nil {
		in.Metadata = map[string]string{}
	}
	meta, err := json.Marshal(in.Metadata)
	if err != nil {
		return err
	}
	cr := &created{newKey: k, account: c.QueryParam("account_id"), name: in.Name, nameKey: namekey.Key(in.Name),
		perms: string(perms), meta: string(meta), expires: in.ExpiresAt, now: time.Now().UTC().Truncate(time.Microsecond)}
	if cr.eventID, err = keys.NewEventID(); err != nil {
		return err
	}
	ch := make([]byte, 0, 256)
	ch = append(ch, `{"expires_at":null,"key_hint":`...)
	ch = appendString(ch, []byte(k.hint))
	ch = append(ch, `,"managed":false,"metadata":`...)
	ch = append(ch, meta...)
	ch = append(ch, `,"name":`...)
	ch = appendString(ch, []byte(in.Name))
	ch = append(ch, `,"permissions":`...)
	ch = append(ch, perms...)
	ch = append(ch, `,"status":"ACTIVE","type":"SECRET"}`...)
	cr.changes = string(ch)
	if f.lite != nil {
		err = f.lite.create(cr, f.mode)
	} else {
		err = f.pg.create(cr, f.mode)
	}
	if err != nil {
		return err
	}
	bp := buffers.Get().(*[]byte) //nolint:forcetypeassert // the pool holds only these
	defer buffers.Put(bp)
	r := row{}
	ts := []byte(cr.now.Format(time.RFC3339Nano))
	r.v[fID], r.v[fAccount], r.v[fName], r.v[fType] = []byte(k.id), []byte(cr.account), []byte(cr.name), []byte("SECRET")
	r.v[fPermissions], r.v[fMetadata], r.v[fStatus] = perms, meta, []byte("ACTIVE")
	r.v[fManaged], r.v[fDeleted] = []byte("0"), []byte("0")
	r.null[fLastUsedAt], r.null[fLastUsedIP], r.null[fExpiresAt], r.null[fPrevExpiresAt], r.null[fCredits] = true, true, true, true, true
	r.v[fCreatedAt], r.v[fUpdatedAt] = ts, ts
	r.v[fByKind], r.v[fByID], r.v[fHint] = []byte(apikey.ActorKey), []byte("caller"), []byte(k.hint)
	b := append((*bp)[:0], `{"data":`...)
	b = appendKeyView(b, &r, k.secret)
	*bp = append(b, envelopeEnd...)
	return send(c, http.StatusCreated, *bp)
}

// regenerateKey: POST /v1/api-keys/{id}/regenerate. Mint a secret, and one
// transaction that writes exactly the real rotation's rows: the key's
// secret columns (the real store's narrow update: the new hash and hint,
// the replaced hash kept as the previous secret, ending now as with no grace
// period), an audit event, and the account row's audit head. Then the key's
// answer with the new secret (read back by the update itself). Left out:
// authentication, the caller's and the target's reads and locks before the
// update (the real rotation reads both, checks the policy on them, and
// takes the key's lock), idempotency, and the audit chain as for create.
// SQLite: group-committed as create; PostgreSQL: one pipelined round trip
// (the real rotation takes two).
func (f *floor) regenerateKey(c echo.Context) error {
	k, err := mint(false, f.mode == apikey.Sandbox)
	if err != nil {
		return err
	}
	k.id = c.Param("id")
	eventID, err := keys.NewEventID()
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	ch := make([]byte, 0, 128)
	ch = append(ch, `{"key_hint":`...)
	ch = appendString(ch, []byte(k.hint))
	ch = append(ch, `,"previous_key_expires_at":"`...)
	ch = now.AppendFormat(ch, time.RFC3339Nano)
	ch = append(ch, `"}`...)
	bp := buffers.Get().(*[]byte) //nolint:forcetypeassert // the pool holds only these
	defer buffers.Put(bp)
	var r row
	var found bool
	if f.lite != nil {
		found, err = f.lite.rotate(&r, k, now, eventID, string(ch), f.mode)
	} else {
		found, err = f.pg.rotate(&r, k, now, eventID, string(ch), f.mode)
	}
	if err != nil {
		return err
	}
	if !found {
		return c.NoContent(http.StatusNotFound)
	}
	b := append((*bp)[:0], `{"data":`...)
	b = appendKeyView(b, &r, k.secret)
	*bp = append(b, envelopeEnd...)
	return send(c, http.StatusOK, *bp)
}

// verifyKey: POST /v1/api-keys/verify. Decode the body, SHA-256 the key,
// one read of the key by its hash's index (only the columns the verdict
// shows), the status and expiry checks, the use noted in memory (written by
// flushUsage as the real usage flush writes it: every 5 s, one batch in key
// id order), and the verdict. Left out: the caller's authentication (its
// own lookup, a credential-cache hit in the real row), the key's parse and
// checksum, the previous-secret arm of the real lookup (a key in its grace
// period is not found), the credential cache itself, budgets and rate
// limits, permissions asked, allowlists, credits.
func (f *floor) verifyKey(c echo.Context) error {
	var in struct {
		Key string `json:"key"`
	}
	if err := json.NewDecoder(c.Request().Body).Decode(&in); err != nil || in.Key == "" {
		return c.NoContent(http.StatusBadRequest)
	}
	hash := keys.Hash(in.Key)
	bp := buffers.Get().(*[]byte) //nolint:forcetypeassert // the pool holds only these
	defer buffers.Put(bp)
	var r row
	var found bool
	var err error
	if f.lite != nil {
		found, err = f.lite.byHash(&r, hash)
	} else {
		found, err = f.pg.byHash(&r, hash)
	}
	if err != nil {
		return err
	}
	b := append((*bp)[:0], `{"data":{`...)
	valid := found && string(r.v[fStatus]) == apikey.StatusActive && !r.bool(fDeleted)
	if valid && !r.null[fExpiresAt] {
		// Both in RFC 3339 at UTC ("Z"): text order is time order to the second.
		exp := r.appendTime(nil, fExpiresAt)
		valid = string(exp[1:len(exp)-1]) > time.Now().UTC().Format(time.RFC3339)
	}
	if !found {
		b = append(b, `"code":"NOT_FOUND","expires_at":null,"grace_period_ends_at":null,"valid":false}`...)
	} else {
		if valid {
			f.recordUse(string(r.v[fID]), time.Now().UTC(), clientIP(c))
		}
		b = append(b, `"account_id":`...)
		b = appendString(b, r.v[fAccount])
		if valid {
			b = append(b, `,"code":"VALID","expires_at":`...)
		} else {
			b = append(b, `,"code":"INACTIVE","expires_at":`...)
		}
		b = r.appendTime(b, fExpiresAt)
		b = append(b, `,"grace_period_ends_at":null,"id":`...)
		b = appendString(b, r.v[fID])
		b = append(b, `,"in_grace_period":false,"managed":`...)
		b = strconv.AppendBool(b, r.bool(fManaged))
		b = append(b, `,"mode":`...)
		b = appendString(b, []byte(f.mode))
		b = append(b, `,"permissions":`...)
		b = append(b, r.v[fPermissions]...)
		b = append(b, `,"type":`...)
		b = appendString(b, r.v[fType])
		b = append(b, `,"valid":`...)
		b = strconv.AppendBool(b, valid)
		b = append(b, '}')
	}
	*bp = append(b, envelopeEnd...)
	return send(c, http.StatusOK, *bp)
}

func (f *floor) recordUse(id string, at time.Time, ip string) {
	f.usageMu.Lock()
	if prev, ok := f.usage[id]; !ok || at.After(prev.at) {
		f.usage[id] = usage{at, ip}
	}
	f.usageMu.Unlock()
}

// flushUsage writes the uses noted since the last flush, every interval, as
// the real usage tracker does (auth.UsageTracker, RecordUsage of the store):
// one write per key used, in key id order, in one transaction.
func (f *floor) flushUsage(every time.Duration) {
	for range time.Tick(every) {
		f.usageMu.Lock()
		batch := f.usage
		f.usage = make(map[string]usage, len(batch))
		f.usageMu.Unlock()
		if len(batch) == 0 {
			continue
		}
		ids := make([]string, 0, len(batch))
		for id := range batch {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		var err error
		if f.lite != nil {
			err = f.lite.recordUsage(ids, batch)
		} else {
			err = f.pg.recordUsage(ids, batch)
		}
		if err != nil {
			log.Print("floor: usage flush: ", err)
		}
	}
}

// sealHash is the floor's audit hash: SHA-256 over the previous head and the
// changes, hex (the real seal hashes the event's canonical form).
func sealHash(prev, changes string) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte(changes))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

var errNotFound = errors.New("not found")

// --- SQLite ------------------------------------------------------------------------------

// sqliteReaderPragmas and sqliteWriterPragmas are the real store's
// connection settings (internal/store/sqlite/sqlite.go: dsn, readers,
// readerCacheKiB, readerMmapBytes, writerCacheKiB, walSizeLimit), kept in
// step by hand. As the real writer (writer.go), the floor's never
// checkpoints on COMMIT: a goroutine on a connection of its own copies the
// WAL back (PASSIVE) once the commits have appended sqliteCheckpointPages,
// so that its fsync never holds up the writer, and the writer restarts the
// WAL between batches once it holds sqliteRestartPages and at most
// sqliteTailPages are left to copy (or past sqliteHardPages), waiting at
// most 50 ms for readers. Left out: the real writer's idle TRUNCATE and its
// retry bookkeeping.
const (
	sqliteCommonPragmas   = "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(%s)"
	sqliteReaderPragmas   = "&_pragma=query_only(1)&_pragma=cache_size(-8192)&_pragma=mmap_size(2147483648)"
	sqliteWriterPragmas   = "&_pragma=wal_autocheckpoint(0)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-16384)&_pragma=journal_size_limit(16875520)"
	sqliteReaders         = 8
	sqliteMaxBatch        = 64
	sqliteCheckpointPages = 1000
	sqliteRestartPages    = 2048
	sqliteTailPages       = 256
	sqliteHardPages       = 4096
)

type liteStore struct {
	rdb                             *sql.DB
	getKeySt, listKeysSt, eventsSt  *sql.Stmt
	byHashSt                        *sql.Stmt
	wdb                             *sql.DB
	conn                            *sql.Conn
	begin, commit, rollback         *sql.Stmt
	insertKey, rotateSt, head       *sql.Stmt
	insertEvent, setHead, usageStmt *sql.Stmt
	queue                           chan *liteJob

	// The WAL's bookkeeping (see sqliteCheckpointPages).
	ckdb       *sql.DB       // the checkpointer's connection
	kick       chan struct{} // asks the checkpointer for a PASSIVE checkpoint
	ckpt       sync.Mutex    // one checkpoint at a time
	backfilled atomic.Int64  // frames the last PASSIVE checkpoint copied
	pages      int           // pages appended since the last kick
	walFrames  int           // frames in the WAL since it last started over
}

// liteJob is one unit for the floor's writer.
type liteJob struct {
	run  func(*liteStore, *liteBatch) error
	done chan error
}

// liteBatch is what a batch's units share: the heads read in it.
type liteBatch struct{ heads map[string]liteHead }

type liteHead struct {
	seq  int64
	hash string
}

// joined is a SELECT list of cols as one NUL-joined text (the real store's
// reads do the same: one text for the driver to copy), NULLs written as ""
// and values as "v" + text where nullable says so.
func joined(cols string, nullable func(int) bool) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if nullable(i) {
			p = `iif(` + p + ` IS NULL, '', 'v' || ` + p + `)`
		}
		parts[i] = p
	}
	return `concat_ws(char(0), ` + strings.Join(parts, ", ") + `)`
}

func openLite(ctx context.Context, dir string, mode apikey.Mode, sync string) (*liteStore, error) {
	// The real store's Open: its migrations (a no-op on a store a server opened already).
	s, err := sqlite.Open(ctx, dir, sqlite.Options{Synchronous: sync})
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	path := "file:" + dir + "/" + sqlite.FileNames[mode] + fmt.Sprintf(sqliteCommonPragmas, strings.ToUpper(sync))
	l := &liteStore{queue: make(chan *liteJob, sqliteMaxBatch)}
	if l.rdb, err = sql.Open("sqlite", path+sqliteReaderPragmas); err != nil {
		return nil, err
	}
	l.rdb.SetMaxOpenConns(sqliteReaders)
	l.rdb.SetMaxIdleConns(sqliteReaders)
	keyView := joined(keyViewColumns, func(i int) bool { return nullableView[i] })
	events := `concat_ws(char(0), ` + eventColumns + `)`
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&l.getKeySt, `SELECT ` + keyView + ` FROM api_keys WHERE id = ?`},
		// The real list's statement with no filter: the index api_keys_account_keys
		// (account_id, deleted, created_at, id, ...), then each row from the table.
		{&l.listKeysSt, `SELECT ` + keyView + ` FROM api_keys WHERE account_id = ?1 AND deleted = 0 ORDER BY created_at, id LIMIT ?2`},
		{&l.eventsSt, `SELECT ` + events + ` FROM audit_events WHERE account_id = ?1 ORDER BY seq DESC LIMIT ?2`},
		{&l.byHashSt, `SELECT ` + keyView + ` FROM api_keys WHERE secret_hash = ?`},
	} {
		if *p.dst, err = l.rdb.PrepareContext(ctx, p.q); err != nil {
			return nil, fmt.Errorf("%s: %w", p.q, err)
		}
	}
	if l.wdb, err = sql.Open("sqlite", path+sqliteWriterPragmas); err != nil {
		return nil, err
	}
	l.wdb.SetMaxOpenConns(1)
	l.wdb.SetMaxIdleConns(1)
	if l.conn, err = l.wdb.Conn(ctx); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&l.begin, `BEGIN IMMEDIATE`},
		{&l.commit, `COMMIT`},
		{&l.rollback, `ROLLBACK`},
		// The columns a key without controls has (the others keep their
		// defaults, which the real insert writes explicitly for such a key).
		{&l.insertKey, `INSERT INTO api_keys (id, account_id, name, type, secret_hash, permissions, metadata, status, managed, deleted,
			expires_at, created_at, updated_at, created_by_kind, created_by_id, created_by_request, key_hint, name_key)
			VALUES (?, ?, ?, 'SECRET', ?, ?, ?, 'ACTIVE', 0, 0, ?, ?, ?, ?, ?, '', ?, ?)`},
		// The real rotation's narrow update (rotateKeySQL), reading the key back.
		{&l.rotateSt, `UPDATE api_keys SET prev_secret_hash = secret_hash, secret_hash = ?1, updated_at = ?2,
			prev_secret_expires_at = ?2, key_hint = ?3 WHERE id = ?4 RETURNING ` + keyView},
		{&l.head, `SELECT audit_seq, audit_head FROM accounts WHERE id = ?`},
		{&l.insertEvent, `INSERT INTO audit_events (` + eventColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?)`},
		{&l.setHead, `UPDATE accounts SET audit_seq = ?, audit_head = ? WHERE id = ?`},
		{&l.usageStmt, `UPDATE api_keys SET last_used_at = ?, last_used_ip = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`},
	} {
		if *p.dst, err = l.conn.PrepareContext(ctx, p.q); err != nil {
			return nil, fmt.Errorf("%s: %w", p.q, err)
		}
	}
	if l.ckdb, err = sql.Open("sqlite", path); err != nil {
		return nil, err
	}
	l.ckdb.SetMaxOpenConns(1)
	l.kick = make(chan struct{}, 1)
	go l.checkpointer()
	go l.writer()
	return l, nil
}

// checkpointer copies the WAL into the database file when the writer asks.
func (l *liteStore) checkpointer() {
	for range l.kick {
		var busy, log, moved int
		l.ckpt.Lock()
		err := l.ckdb.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &moved)
		if err == nil {
			l.backfilled.Store(int64(moved))
		}
		l.ckpt.Unlock()
	}
}

// countWAL adds the pages the COMMIT appended (sqlite3_db_status, as the real writer counts them).
func (l *liteStore) countWAL() {
	n := 0
	_ = l.conn.Raw(func(dc any) error {
		if s, ok := dc.(sqlite3.DBStatus); ok {
			n, _, _ = s.Status(sqlite3.DBStatusCacheWrite, true)
		}
		return nil
	})
	l.walFrames += n
	if l.pages += n; l.pages >= sqliteCheckpointPages {
		l.pages = 0
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// restartWAL restarts the WAL between batches once it is long and mostly copied.
func (l *liteStore) restartWAL() {
	if l.walFrames < sqliteRestartPages || (l.walFrames < sqliteHardPages && l.walFrames-int(l.backfilled.Load()) > sqliteTailPages) {
		return
	}
	ctx := context.Background()
	l.ckpt.Lock()
	defer l.ckpt.Unlock()
	if _, err := l.conn.ExecContext(ctx, "PRAGMA busy_timeout = 50"); err != nil {
		return
	}
	var busy, log, moved int
	err := l.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &log, &moved)
	_, _ = l.conn.ExecContext(ctx, "PRAGMA busy_timeout = 10000")
	if err == nil && busy == 0 {
		l.walFrames = 0
		l.backfilled.Store(0)
	}
}

// writer is the floor's group commit: one transaction per batch of the
// units queued (up to sqliteMaxBatch), one COMMIT, then every unit's
// outcome, then the WAL's restart when due. No savepoints, no linger, no
// caches.
func (l *liteStore) writer() {
	ctx := context.Background()
	for {
		batch := []*liteJob{<-l.queue}
	more:
		for len(batch) < sqliteMaxBatch {
			select {
			case j := <-l.queue:
				batch = append(batch, j)
			default:
				break more
			}
		}
		lb := &liteBatch{heads: map[string]liteHead{}}
		_, err := l.begin.ExecContext(ctx)
		errs := make([]error, len(batch))
		if err == nil {
			for i, j := range batch {
				if errs[i] = j.run(l, lb); errs[i] != nil && !errors.Is(errs[i], errNotFound) {
					err = errs[i]
					break
				}
			}
		}
		if err == nil {
			_, err = l.commit.ExecContext(ctx)
		}
		if err != nil {
			_, _ = l.rollback.ExecContext(ctx)
		}
		l.countWAL()
		for i, j := range batch {
			if err != nil {
				j.done <- err
			} else {
				j.done <- errs[i]
			}
		}
		l.restartWAL()
	}
}

func (l *liteStore) run(fn func(*liteStore, *liteBatch) error) error {
	j := &liteJob{run: fn, done: make(chan error, 1)}
	l.queue <- j
	return <-j.done
}

// appendEvent writes an event after the account's head (read once a batch)
// and moves the head.
func (l *liteStore) appendEvent(lb *liteBatch, mode apikey.Mode, account, eventID, action, keyID, changes string, now time.Time) error {
	ctx := context.Background()
	h, ok := lb.heads[account]
	if !ok {
		if err := l.head.QueryRowContext(ctx, account).Scan(&h.seq, &h.hash); err != nil {
			return err
		}
	}
	hash := sealHash(h.hash, changes)
	if _, err := l.insertEvent.ExecContext(ctx, account, h.seq+1, eventID, string(mode), action, keyID, apikey.ActorKey, "caller",
		"127.0.0.1", now.Format(sqliteTime), changes, h.hash, hash); err != nil {
		return err
	}
	if _, err := l.setHead.ExecContext(ctx, h.seq+1, hash, account); err != nil {
		return err
	}
	lb.heads[account] = liteHead{h.seq + 1, hash}
	return nil
}

// sqliteTime is how the real store writes times (fmtTime).
const sqliteTime = "2006-01-02T15:04:05.000000000Z"

func (l *liteStore) create(cr *created, mode apikey.Mode) error {
	return l.run(func(l *liteStore, lb *liteBatch) error {
		ctx := context.Background()
		ts := cr.now.Format(sqliteTime)
		var exp any
		if cr.expires != nil {
			exp = cr.expires.UTC().Format(sqliteTime)
		}
		if _, err := l.insertKey.ExecContext(ctx, cr.id, cr.account, cr.name, cr.hash, cr.perms, cr.meta, exp, ts, ts,
			apikey.ActorKey, "caller", cr.hint, cr.nameKey); err != nil {
			return err
		}
		return l.appendEvent(lb, mode, cr.account, cr.eventID, audit.Create, cr.id, cr.changes, cr.now)
	})
}

func (l *liteStore) rotate(r *row, k newKey, now time.Time, eventID, changes string, mode apikey.Mode) (bool, error) {
	var text []byte
	err := l.run(func(l *liteStore, lb *liteBatch) error {
		err := l.rotateSt.QueryRowContext(context.Background(), k.hash, now.Format(sqliteTime), k.hint, k.id).Scan(&text)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		_, rest, _ := bytes.Cut(text, nul)
		account, _, _ := bytes.Cut(rest, nul)
		return l.appendEvent(lb, mode, string(account), eventID, audit.Regenerate, k.id, changes, now)
	})
	if errors.Is(err, errNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, splitKey(r, text)
}

// splitKey cuts a joined key row into r: r's fields are slices of text.
func splitKey(r *row, text []byte) error {
	for i := range nKeyFields {
		var field []byte
		if i < nKeyFields-1 {
			var ok bool
			if field, text, ok = bytes.Cut(text, nul); !ok {
				return fmt.Errorf("a key row of %d fields", i+1)
			}
		} else {
			field = text
		}
		if nullableView[i] {
			if len(field) == 0 {
				r.null[i] = true
				r.v[i] = nil
				continue
			}
			field = field[1:]
		}
		r.null[i] = false
		r.v[i] = field
	}
	return nil
}

var nul = []byte{0}

func (l *liteStore) getKey(b []byte, id string) ([]byte, bool, error) {
	var text []byte // the driver's string, copied once; the fields are slices of it
	err := l.getKeySt.QueryRowContext(context.Background(), id).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return b, false, nil
	}
	if err != nil {
		return b, false, err
	}
	var r row
	if err := splitKey(&r, text); err != nil {
		return b, false, err
	}
	return appendKeyView(b, &r, ""), true, nil
}

func (l *liteStore) listKeys(b []byte, account string, limit int) ([]byte, error) {
	rows, err := l.listKeysSt.QueryContext(context.Background(), account, limit+1)
	if err != nil {
		return b, err
	}
	defer func() { _ = rows.Close() }()
	var r row
	n := 0
	var lastCreated, lastID []byte
	more := false
	for rows.Next() {
		if n == limit {
			more = true
			break
		}
		// RawBytes: the row's text in a buffer database/sql reuses (valid until Next).
		var text sql.RawBytes
		if err := rows.Scan(&text); err != nil {
			return b, err
		}
		if err := splitKey(&r, text); err != nil {
			return b, err
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = appendKeyView(b, &r, "")
		lastCreated, lastID = append(lastCreated[:0], r.v[fCreatedAt]...), append(lastID[:0], r.v[fID]...)
		n++
	}
	if err := rows.Err(); err != nil {
		return b, err
	}
	return appendCursor(b, more, lastCreated, lastID), nil
}

func (l *liteStore) listEvents(b []byte, account string, limit int) ([]byte, error) {
	rows, err := l.eventsSt.QueryContext(context.Background(), account, limit+1)
	if err != nil {
		return b, err
	}
	defer func() { _ = rows.Close() }()
	var v [nEventFields][]byte
	n := 0
	var lastSeq []byte
	more := false
	for rows.Next() {
		if n == limit {
			more = true
			break
		}
		var text sql.RawBytes
		if err := rows.Scan(&text); err != nil {
			return b, err
		}
		for i := range nEventFields {
			var field []byte
			if i < nEventFields-1 {
				var ok bool
				if field, text, ok = bytes.Cut(text, nul); !ok {
					return b, fmt.Errorf("an event row of %d fields", i+1)
				}
			} else {
				field = text
			}
			v[i] = field
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = appendEvent(b, &v, false)
		lastSeq = append(lastSeq[:0], v[1]...)
		n++
	}
	if err := rows.Err(); err != nil {
		return b, err
	}
	return appendCursor(b, more, lastSeq), nil
}

func (l *liteStore) byHash(r *row, hash []byte) (bool, error) {
	var text []byte
	err := l.byHashSt.QueryRowContext(context.Background(), hash).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, splitKey(r, text)
}

func (l *liteStore) recordUsage(ids []string, batch map[string]usage) error {
	return l.run(func(l *liteStore, _ *liteBatch) error {
		for _, id := range ids {
			u := batch[id]
			at := u.at.Format(sqliteTime)
			if _, err := l.usageStmt.ExecContext(context.Background(), at, u.ip, id, at); err != nil {
				return err
			}
		}
		return nil
	})
}

// --- PostgreSQL --------------------------------------------------------------------------

type pgStore struct {
	pool                                        *pgxpool.Pool
	getKey_, listKeys_, events_, byHash_        string
	insertKey, rotate_, appendEvent, appendByID string
	usage                                       string
}

// textResults asks for every column in text form: the answer is text, so
// the rows' bytes are appended as they come (times rewritten), as the real
// store appends the raw values it reads.
var textResults = pgx.QueryResultFormats{pgx.TextFormatCode}

func openPG(ctx context.Context, url string, mode apikey.Mode) (*pgStore, error) {
	// The real store's open: migrations, the pool's size and timeouts.
	s, err := postgres.OpenOptions(ctx, url, postgres.Options{})
	if err != nil {
		return nil, err
	}
	schema := postgres.Schemas[mode]
	keysT := pgx.Identifier{schema, "api_keys"}.Sanitize()
	accounts := pgx.Identifier{schema, "accounts"}.Sanitize()
	events := pgx.Identifier{schema, "audit_events"}.Sanitize()
	eventSelect := strings.Replace(eventColumns, "changes", "changes::text", 1)
	// The event and the head it becomes in one statement, the head read under
	// the account's row lock (FOR NO KEY UPDATE, as the real statement takes it).
	appendEvent := func(account string) string {
		return `WITH head AS (SELECT id, audit_seq + 1 AS seq, audit_head AS prev FROM ` + accounts + ` WHERE id = ` + account + ` FOR NO KEY UPDATE),
			ev AS (INSERT INTO ` + events + ` (` + eventColumns + `)
				SELECT head.id, head.seq, $2, $3, $4, $5, $6, $7, '', $8, $9, $10, head.prev, $11 FROM head)
			UPDATE ` + accounts + ` AS a SET audit_seq = head.seq, audit_head = $11 FROM head WHERE a.id = head.id`
	}
	p := &pgStore{
		pool:      s.Pool(),
		getKey_:   `SELECT ` + keyViewColumns + ` FROM ` + keysT + ` WHERE id = $1`,
		listKeys_: `SELECT ` + keyViewColumns + ` FROM ` + keysT + ` WHERE account_id = $1 AND deleted = $2 ORDER BY created_at, id COLLATE "C" LIMIT $3`,
		events_:   `SELECT ` + eventSelect + ` FROM ` + events + ` WHERE account_id = $1 ORDER BY seq DESC LIMIT $2`,
		byHash_:   `SELECT ` + keyViewColumns + ` FROM ` + keysT + ` WHERE secret_hash = $1`,
		insertKey: `INSERT INTO ` + keysT + ` (id, account_id, name, type, secret_hash, permissions, metadata, status, managed, deleted,
			expires_at, created_at, updated_at, created_by_kind, created_by_id, created_by_request, key_hint, name_key)
			VALUES ($1, $2, $3, 'SECRET', $4, $5, $6, 'ACTIVE', FALSE, FALSE, $7, $8, $8, $9, $10, '', $11, $12)`,
		rotate_: `UPDATE ` + keysT + ` SET prev_secret_hash = secret_hash, secret_hash = $1, updated_at = $2,
			prev_secret_expires_at = $2, key_hint = $3 WHERE id = $4 RETURNING ` + asText(keyViewColumns),
		appendEvent: appendEvent(`$1`),
		// A rotation's event: the key's account read by the key's id in the same statement.
		appendByID: appendEvent(`(SELECT account_id FROM ` + keysT + ` WHERE id = $1)`),
		usage:      `UPDATE ` + keysT + ` SET last_used_at = $1, last_used_ip = $2 WHERE id = $3 AND (last_used_at IS NULL OR last_used_at < $1)`,
	}
	return p, nil
}

// asText casts each of cols to text: a batch cannot ask for text results
// (pgx.QueryResultFormats), and a text column's binary form is its text.
func asText(cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p) + "::text"
	}
	return strings.Join(parts, ", ")
}

// scanRaw reads a key row's raw text values into r.
func scanRaw(r *row, raw [][]byte) {
	r.pg = true
	for i := range nKeyFields {
		r.v[i] = raw[i]
		r.null[i] = raw[i] == nil
	}
}

func (p *pgStore) getKey(b []byte, id string) ([]byte, bool, error) {
	rows, err := p.pool.Query(context.Background(), p.getKey_, textResults, id)
	if err != nil {
		return b, false, err
	}
	defer rows.Close()
	found := false
	if rows.Next() {
		var r row
		scanRaw(&r, rows.RawValues())
		b = appendKeyView(b, &r, "")
		found = true
	}
	rows.Close()
	return b, found, rows.Err()
}

func (p *pgStore) listKeys(b []byte, account string, limit int) ([]byte, error) {
	rows, err := p.pool.Query(context.Background(), p.listKeys_, textResults, account, false, limit+1)
	if err != nil {
		return b, err
	}
	defer rows.Close()
	var r row
	n := 0
	more := false
	var lastCreated, lastID []byte
	for rows.Next() {
		if n == limit {
			more = true
			break
		}
		scanRaw(&r, rows.RawValues())
		if n > 0 {
			b = append(b, ',')
		}
		b = appendKeyView(b, &r, "")
		// The raw values are the connection's buffer until the next row.
		lastCreated, lastID = append(lastCreated[:0], r.v[fCreatedAt]...), append(lastID[:0], r.v[fID]...)
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return b, err
	}
	return appendCursor(b, more, lastCreated, lastID), nil
}

func (p *pgStore) listEvents(b []byte, account string, limit int) ([]byte, error) {
	rows, err := p.pool.Query(context.Background(), p.events_, textResults, account, limit+1)
	if err != nil {
		return b, err
	}
	defer rows.Close()
	var v [nEventFields][]byte
	n := 0
	more := false
	var lastSeq []byte
	for rows.Next() {
		if n == limit {
			more = true
			break
		}
		raw := rows.RawValues()
		copy(v[:], raw)
		if n > 0 {
			b = append(b, ',')
		}
		b = appendEvent(b, &v, true)
		lastSeq = append(lastSeq[:0], v[1]...)
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return b, err
	}
	return appendCursor(b, more, lastSeq), nil
}

func (p *pgStore) byHash(r *row, hash []byte) (bool, error) {
	rows, err := p.pool.Query(context.Background(), p.byHash_, textResults, hash)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	found := false
	if rows.Next() {
		scanRaw(r, rows.RawValues())
		// Kept past the next read of the connection: copied.
		for i := range r.v {
			if r.v[i] != nil {
				r.v[i] = slices.Clone(r.v[i])
			}
		}
		found = true
	}
	rows.Close()
	return found, rows.Err()
}

// commitTail is the real store's commit (postgres.go, commit): the unit
// commits with synchronous_commit off, then a transaction with an xid
// commits synchronously in the same batch, so the answer waits for the WAL
// flush as the real one does.
func commitTail(b *pgx.Batch) {
	b.Queue("set local synchronous_commit = off")
	b.Queue("commit")
	b.Queue("select txid_current()")
}

func (p *pgStore) create(cr *created, mode apikey.Mode) error {
	b := &pgx.Batch{}
	b.Queue("begin")
	b.Queue(p.insertKey, cr.id, cr.account, cr.name, cr.hash, cr.perms, cr.meta, cr.expires, cr.now, apikey.ActorKey, "caller", cr.hint, cr.nameKey)
	// The hash does not chain here (the head is read by the statement): see sealHash.
	b.Queue(p.appendEvent, cr.account, cr.eventID, string(mode), audit.Create, cr.id, apikey.ActorKey, "caller",
		"127.0.0.1", cr.now, cr.changes, sealHash(cr.id, cr.changes))
	commitTail(b)
	return p.exec(b)
}

// exec sends b and reads every result; on a failure the connection is
// rolled back (its transaction left aborted).
func (p *pgStore) exec(b *pgx.Batch) error {
	ctx := context.Background()
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	br := conn.SendBatch(ctx, b)
	for range b.Len() {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_, _ = conn.Exec(ctx, "rollback")
	}
	return err
}

func (p *pgStore) rotate(r *row, k newKey, now time.Time, eventID, changes string, mode apikey.Mode) (bool, error) {
	ctx := context.Background()
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("begin")
	b.Queue(p.rotate_, k.hash, now, k.hint, k.id)
	b.Queue(p.appendByID, k.id, eventID, string(mode), audit.Regenerate, k.id, apikey.ActorKey, "caller",
		"127.0.0.1", now, changes, sealHash(k.id, changes))
	commitTail(b)
	br := conn.SendBatch(ctx, b)
	found := false
	if _, err = br.Exec(); err == nil {
		var rows pgx.Rows
		rows, err = br.Query()
		if err == nil {
			if rows.Next() {
				scanRaw(r, rows.RawValues())
				for i := range r.v { // the connection's buffer: copied before the next result
					if r.v[i] != nil {
						r.v[i] = slices.Clone(r.v[i])
					}
				}
				found = true
			}
			rows.Close()
			err = rows.Err()
		}
	}
	for i := 2; err == nil && i < b.Len(); i++ {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_, _ = conn.Exec(ctx, "rollback")
	}
	return found, err
}

func (p *pgStore) recordUsage(ids []string, batch map[string]usage) error {
	// As the real flush: one batch, an implicit transaction, in key id order.
	var b pgx.Batch
	for _, id := range ids {
		u := batch[id]
		b.Queue(p.usage, u.at.Truncate(time.Microsecond), u.ip, id)
	}
	return p.pool.SendBatch(context.Background(), &b).Close()
}
