package auditrow

import (
	json "github.com/goccy/go-json"
)

// marshal is json.Marshal of a normalized value (what direct or Decode
// returns), byte for byte: the stores hash and keep these bytes. It is
// goccy/go-json's Marshal: encoding/json's reflection over a map of
// interfaces (and the sorting of its keys through reflect.Values) was most
// of an audit append's own CPU, on the one writer goroutine SQLite's writes
// wait for. go-json writes encoding/json's bytes (map keys sorted bytewise,
// <, >, &, U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd, a
// json.Number as its text, floats in the same form), which
// TestMarshalIsJSONMarshal holds it to on random values.
func marshal(v any) ([]byte, error) {
	return json.Marshal(v)
}
