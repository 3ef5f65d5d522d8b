package client_test

import (
	"regexp"
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/keys"
)

// The client's patterns are the server's, and match what it issues.
func TestPatternsAreTheServers(t *testing.T) {
	for _, c := range []struct {
		mine, server string
		kind         keys.Kind
		sandbox      bool
	}{
		{client.PatternSecretLive, keys.PatternSecretLive, keys.KindSecret, false},
		{client.PatternSecretTest, keys.PatternSecretTest, keys.KindSecret, true},
		{client.PatternPublishableLive, keys.PatternPublishableLive, keys.KindPublishable, false},
		{client.PatternPublishableTest, keys.PatternPublishableTest, keys.KindPublishable, true},
	} {
		if c.mine != c.server {
			t.Errorf("client pattern %s, server %s", c.mine, c.server)
		}
		tok, err := keys.New(c.kind, c.sandbox)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile("^" + c.mine + "$").MatchString(tok) {
			t.Errorf("%s does not match an issued key", c.mine)
		}
	}
}
