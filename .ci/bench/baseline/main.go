// Command baseline is the load test's yardstick: a bare Echo v4 handler that
// does only create's JSON work (decode the create body, mint a random secret,
// SHA-256 it, encode a response of the same shape) with no authentication,
// validation, rate limiting, logging or storage. .ci/bench/load.sh builds it
// (`go build -o X .ci/bench/baseline/main.go`); nothing else imports it.
package main

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/keys"
)

var sink [sha256.Size]byte

func main() {
	addr := flag.String("addr", "127.0.0.1:18480", "listen address")
	flag.Parse()

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/v1/api-keys/", func(c echo.Context) error {
		var in api.CreateApiKeyRequest
		if err := json.NewDecoder(c.Request().Body).Decode(&in); err != nil {
			return c.JSON(http.StatusBadRequest, map[string]string{"message": "bad body"})
		}
		secret, err := keys.New(keys.KindSecret, true)
		if err != nil {
			return err
		}
		id, err := keys.NewID()
		if err != nil {
			return err
		}
		sink = sha256.Sum256([]byte(secret))
		meta := api.Metadata{}
		if in.Metadata != nil {
			meta = *in.Metadata
		}
		now := time.Now().UTC()
		return c.JSON(http.StatusCreated, api.ApiKeyEnvelope{
			Message: "success", Success: true,
			Data: api.ApiKey{
				Object: api.ApiKeyObjectApiKey, Id: id, AccountId: c.QueryParam("account_id"),
				Name: in.Name, Type: api.SECRET, Key: secret, Metadata: meta,
				Permissions: api.Permissions(in.Permissions), Status: api.ACTIVE,
				ExpiresAt: in.ExpiresAt, CreatedAt: now, UpdatedAt: now,
			},
		})
	})
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	srv := &http.Server{Addr: *addr, Handler: e, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
