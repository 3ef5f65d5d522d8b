package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/metrics"
)

// TestSampledResponseBreakingSpec: a sampled response that breaks the spec
// is answered as with every response checked: a 500 in the envelope, logged
// with the violation, and counted as invalid; a sampled valid response goes
// out unchanged.
func TestSampledResponseBreakingSpec(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	m := metrics.New()
	s := &Server{
		spec:             spec,
		log:              slog.New(slog.NewJSONHandler(&logged, nil)),
		responsesValid:   m.ResponsesValidated.WithLabelValues("valid"),
		responsesInvalid: m.ResponsesValidated.WithLabelValues("invalid"),
	}
	e := echo.New()
	e.HTTPErrorHandler = s.renderError
	sample := s.sampleResponses(math.Nextafter(1, 0)) // every draw is inside the sample

	serve := func(h echo.HandlerFunc) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, BasePath+"/api-keys/key_1", nil)
		route, params, err := spec.Router.FindRoute(req)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		c := e.NewContext(req, rec)
		setTestState(c, "req_test", route, params)
		c.Response().Header().Set(echo.HeaderXRequestID, "req_test")
		if err := sample(h)(c); err != nil {
			s.renderError(err, c)
		}
		return rec
	}

	rec := serve(func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]any{"bogus": true}) })
	var env errorEnvelope
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || rec.Code != http.StatusInternalServerError || env.Error.Code != api.CodeInternal {
		t.Fatalf("got %d %s (%v), want a 500 envelope", rec.Code, rec.Body, err)
	}
	if !strings.Contains(logged.String(), "response violates openapi.yaml") {
		t.Errorf("the violation is not logged: %s", logged.String())
	}
	if bad, good := responsesCounted(t, m, "invalid"), responsesCounted(t, m, "valid"); bad != 1 || good != 0 {
		t.Errorf("counted %v invalid, %v valid; want 1, 0", bad, good)
	}

	rec = serve(func(echo.Context) error { return apierr.KeyNotFound() })
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"code":40400`) {
		t.Fatalf("got %d %s, want the 404 unchanged", rec.Code, rec.Body)
	}
	if responsesCounted(t, m, "valid") != 1 {
		t.Errorf("the valid response was not counted")
	}
}

// responsesCounted reads one series of hsrcpay_responses_validated_total.
func responsesCounted(t *testing.T, m *metrics.Metrics, result string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if mf.GetName() == "hsrcpay_responses_validated_total" && mt.GetLabel()[0].GetValue() == result {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}
