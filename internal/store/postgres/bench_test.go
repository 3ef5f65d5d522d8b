//go:build unix

package postgres_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// BenchmarkWritesParallel runs the service's creates and regenerates on
// PostgreSQL from 32 goroutines, on one account (every unit waits for its
// row: the audit chain; regenerates also for their one target key) and on
// 32 accounts (regenerates of different keys), with DefaultMaxConns and
// other pool sizes. PostgreSQL shares the machine: the
// figures compare settings, they are not the server's throughput.
func BenchmarkWritesParallel(b *testing.B) {
	const goroutines = 32
	url := storetest.FreshPostgresDB(b)
	var runs atomic.Int64 // each run of a sub-benchmark provisions accounts of its own
	for _, conns := range []int32{0, 4, 8, 16, 32} {
		for _, accounts := range []int{1, goroutines} {
			for _, op := range []string{"create", "regenerate"} {
				pool := "default"
				if conns > 0 {
					pool = fmt.Sprint(conns)
				}
				name := fmt.Sprintf("%s/accounts=%d/pool=%s", op, accounts, pool)
				b.Run(name, func(b *testing.B) {
					ctx := context.Background()
					st, err := postgres.OpenTuned(ctx, url, func(c *pgxpool.Config) {
						if conns > 0 {
							c.MaxConns = conns
						}
					})
					if err != nil {
						b.Fatal(err)
					}
					defer func() { _ = st.Close() }()
					type caller struct {
						svc    *apikeys.Service
						p      *auth.Principal
						target string
					}
					callers := make([]caller, accounts)
					for a := range callers {
						svc, p, pub := bootstrap(b, st, fmt.Sprintf("acct_%d_%d", runs.Add(1), a))
						callers[a] = caller{svc, p, pub}
					}
					var seq atomic.Int64
					b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					defer cputime.Report(b, cputime.Process())
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							i := seq.Add(1)
							c := callers[int(i)%accounts]
							var err error
							if op == "create" {
								_, err = c.svc.Create(ctx, c.p, c.p.Accounts[0], apikeys.CreateInput{Name: "bench " + strconv.FormatInt(i, 10)})
							} else {
								_, err = c.svc.Regenerate(ctx, c.p, c.target, time.Minute)
							}
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		}
	}
}

// BenchmarkRegenerateBesideHotAccount measures regenerates spread over 16
// accounts while 16 other goroutines create keys on one hot account, whose
// units wait for its row lock holding a pooled connection each: with a
// small pool they take every connection, and the other accounts' writes
// (and every authentication's read) queue behind them.
func BenchmarkRegenerateBesideHotAccount(b *testing.B) {
	const spread, hot = 16, 16
	url := storetest.FreshPostgresDB(b)
	var runs atomic.Int64
	for _, conns := range []int32{4, 8, 16, 32} {
		b.Run(fmt.Sprintf("pool=%d", conns), func(b *testing.B) {
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			st, err := postgres.OpenTuned(ctx, url, func(c *pgxpool.Config) { c.MaxConns = conns })
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = st.Close() }()
			hotSvc, hotP, _ := bootstrap(b, st, fmt.Sprintf("acct_hot_%d", runs.Add(1)))
			type caller struct {
				svc    *apikeys.Service
				p      *auth.Principal
				target string
			}
			callers := make([]caller, spread)
			for a := range callers {
				svc, p, pub := bootstrap(b, st, fmt.Sprintf("acct_spread_%d", runs.Add(1)))
				callers[a] = caller{svc, p, pub}
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			defer stop()
			for g := range hot {
				wg.Go(func() {
					for i := 0; ctx.Err() == nil; i++ {
						_, _ = hotSvc.Create(ctx, hotP, hotP.Accounts[0], apikeys.CreateInput{Name: fmt.Sprintf("hot %d %d", g, i)}) // load only; cancelled at the end
					}
				})
			}
			var seq atomic.Int64
			b.SetParallelism((spread + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c := callers[int(seq.Add(1))%spread]
					if _, err := c.svc.Regenerate(ctx, c.p, c.target, time.Minute); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
