// Package perm holds the permission model: the catalog of resources and
// actions (read from the spec), and sets of "resource:action" grants.
package perm

import (
	"fmt"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// CatalogExtension is where openapi.yaml lists the resources and actions that exist.
const CatalogExtension = "x-hsrcpay-permission-catalog"

// OperationExtension is where each operation states the permission it needs.
const OperationExtension = "x-hsrcpay-permission"

// Catalog maps each resource to its known actions.
type Catalog map[string]map[string]bool

// LoadCatalog reads the catalog from the spec's info extension.
func LoadCatalog(doc *openapi3.T) (Catalog, error) {
	raw, ok := doc.Info.Extensions[CatalogExtension].(map[string]any)
	if !ok || len(raw) == 0 {
		return nil, fmt.Errorf("spec: info.%s is missing or not a map", CatalogExtension)
	}
	c := Catalog{}
	for res, v := range raw {
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("spec: %s.%s is not a list", CatalogExtension, res)
		}
		c[res] = map[string]bool{}
		for _, a := range list {
			s, ok := a.(string)
			if !ok {
				return nil, fmt.Errorf("spec: %s.%s has a non-string action", CatalogExtension, res)
			}
			c[res][s] = true
		}
	}
	return c, nil
}

// Unknown lists the "resource:action" pairs of m that the catalog lacks, sorted.
func (c Catalog) Unknown(m map[string][]string) []string {
	var out []string
	for res, actions := range m {
		known, ok := c[res]
		for _, a := range actions {
			if !ok || !known[a] {
				out = append(out, res+":"+a)
			}
		}
		if len(actions) == 0 && !ok {
			out = append(out, res)
		}
	}
	sort.Strings(out)
	return out
}

// All is every permission in the catalog, as a map; managed secret keys hold it.
func (c Catalog) All() map[string][]string {
	m := make(map[string][]string, len(c))
	for res, actions := range c {
		for a := range actions {
			m[res] = append(m[res], a)
		}
		sort.Strings(m[res])
	}
	return m
}

// Set is a set of "resource:action" strings.
type Set map[string]struct{}

// FromMap expands {"account:api:key": ["create"]} into {"account:api:key:create"}.
//
// Every request's authentication (and a write's re-check) expands its key's
// grants (a managed secret key's are the whole catalog): the set is sized
// once, and its members are substrings of one string built for them all,
// rather than a map grown step by step and one string per grant.
func FromMap(m map[string][]string) Set {
	n, size := 0, 0
	for res, actions := range m {
		n += len(actions)
		for _, a := range actions {
			size += len(res) + 1 + len(a)
		}
	}
	// Where each grant ends in the string: maps iterate in no fixed order,
	// so the string is cut by what one pass wrote (on the stack for up to
	// 64 grants; the catalog has fewer).
	var stack [64]int
	ends := stack[:0]
	if n > len(stack) {
		ends = make([]int, 0, n)
	}
	var sb strings.Builder
	sb.Grow(size)
	for res, actions := range m {
		for _, a := range actions {
			sb.WriteString(res)
			sb.WriteByte(':')
			sb.WriteString(a)
			ends = append(ends, sb.Len())
		}
	}
	s := make(Set, n)
	all, at := sb.String(), 0
	for _, end := range ends {
		s[all[at:end]] = struct{}{}
		at = end
	}
	return s
}

// Expands reports whether s is FromMap(m), without building it: a write's
// re-check of its caller's key finds the grants authentication expanded,
// almost always. A list holding an action twice answers false (FromMap then
// decides).
func (s Set) Expands(m map[string][]string) bool {
	n := 0
	var buf [128]byte
	for res, actions := range m {
		for i, a := range actions {
			for _, b := range actions[:i] {
				if a == b {
					return false
				}
			}
			g := append(append(append(buf[:0], res...), ':'), a...)
			if _, ok := s[string(g)]; !ok {
				return false
			}
			n++
		}
	}
	return n == len(s)
}

// FromList builds a set from permission strings, e.g. a JWT's claim.
func FromList(list []string) Set {
	s := make(Set, len(list))
	for _, p := range list {
		s[strings.TrimSpace(p)] = struct{}{}
	}
	return s
}

// Has reports whether p is granted.
func (s Set) Has(p string) bool { _, ok := s[p]; return ok }

// Missing lists, sorted, the members of want that s lacks.
func (s Set) Missing(want Set) []string {
	var out []string
	for p := range want {
		if !s.Has(p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// BearerScheme is the spec's security scheme of bearer credentials (keys and
// JWTs), the only credentials that hold permissions.
const BearerScheme = "bearerAuth"

// OperationPermissions maps each operationId called with a bearer credential
// to its declared permission and fails if any such operation declares none,
// so no endpoint is left unguarded. An operation whose security requirement
// names no bearer scheme (the leak report, signed by GitHub) has no
// credential to hold a permission: it must declare none, so that nobody
// reads a declaration the server does not enforce.
func OperationPermissions(doc *openapi3.T) (map[string]string, error) {
	out := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			p, _ := op.Extensions[OperationExtension].(string)
			bearer := usesBearer(doc, op)
			switch {
			case bearer && p == "":
				return nil, fmt.Errorf("spec: %s %s declares no %s", method, path, OperationExtension)
			case !bearer && p != "":
				return nil, fmt.Errorf("spec: %s %s declares %s but is not called with a bearer credential", method, path, OperationExtension)
			case bearer:
				out[op.OperationID] = p
			}
		}
	}
	return out, nil
}

// usesBearer reports whether the operation's security requirement (its own,
// else the document's) names the bearer scheme.
func usesBearer(doc *openapi3.T, op *openapi3.Operation) bool {
	reqs := doc.Security
	if op.Security != nil {
		reqs = *op.Security
	}
	for _, r := range reqs {
		if _, ok := r[BearerScheme]; ok {
			return true
		}
	}
	return false
}
