//go:build tools

// Package tools pins the code generator's version in go.mod, so `go run` in
// the Makefile always uses the same oapi-codegen as the committed gen/ code.
package tools

import (
	_ "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen"
)
