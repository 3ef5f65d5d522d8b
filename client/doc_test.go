package client_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
)

// The constants this package re-exports are the generated ones, and every
// error code of the spec has one: callers never need client/oapi.
func TestReexportsMatchTheSpec(t *testing.T) {
	codes := map[client.ErrorCode]oapi.ErrorCode{
		client.CodeValidationFailed: oapi.CodeValidationFailed, client.CodeMalformedBody: oapi.CodeMalformedBody,
		client.CodeMissingCredentials: oapi.CodeMissingCredentials, client.CodeInvalidCredentials: oapi.CodeInvalidCredentials,
		client.CodeExpiredCredentials: oapi.CodeExpiredCredentials, client.CodePermissionDenied: oapi.CodePermissionDenied,
		client.CodeAccountForbidden: oapi.CodeAccountForbidden, client.CodePrivilegeEscalation: oapi.CodePrivilegeEscalation,
		client.CodePublishableKeyForbidden: oapi.CodePublishableKeyForbidden, client.CodeReplacedSecret: oapi.CodeReplacedSecret,
		client.CodeLifetimeEscalation: oapi.CodeLifetimeEscalation, client.CodeKeyNotFound: oapi.CodeKeyNotFound,
		client.CodeAccountNotFound: oapi.CodeAccountNotFound, client.CodeRouteNotFound: oapi.CodeRouteNotFound,
		client.CodeMethodNotAllowed: oapi.CodeMethodNotAllowed, client.CodeDuplicateName: oapi.CodeDuplicateName,
		client.CodeKeyNotActive: oapi.CodeKeyNotActive, client.CodeKeyLimitReached: oapi.CodeKeyLimitReached,
		client.CodeKeyDeleted: oapi.CodeKeyDeleted, client.CodeBodyTooLarge: oapi.CodeBodyTooLarge,
		client.CodeUnsupportedMediaType: oapi.CodeUnsupportedMediaType, client.CodeUnknownPermission: oapi.CodeUnknownPermission,
		client.CodeKeyNotManaged: oapi.CodeKeyNotManaged, client.CodeInvalidExpiry: oapi.CodeInvalidExpiry,
		client.CodeLifetimeExceedsCaller: oapi.CodeLifetimeExceedsCaller, client.CodeManagedKeyNotDeletable: oapi.CodeManagedKeyNotDeletable,
		client.CodeManagedKeyFixed: oapi.CodeManagedKeyFixed, client.CodeExpiryExtended: oapi.CodeExpiryExtended,
		client.CodeRateLimited: oapi.CodeRateLimited, client.CodeTooManyAuthFailures: oapi.CodeTooManyAuthFailures,
		client.CodeInternal: oapi.CodeInternal, client.CodeIdempotencyConflict: oapi.CodeIdempotencyConflict,
		client.CodeIdempotencyKeyReused: oapi.CodeIdempotencyKeyReused,
		client.CodeStoreUnavailable:     oapi.CodeStoreUnavailable,
		client.CodeBadLeakSignature:     oapi.CodeBadLeakSignature, client.CodeSecretScanningOff: oapi.CodeSecretScanningOff,
	}
	for mine, gen := range codes {
		if mine != gen || !mine.Valid() {
			t.Errorf("code %d re-exported as %d", gen, mine)
		}
	}
	spec := 0
	for c := oapi.ErrorCode(10000); c < 100000; c++ {
		if c.Valid() {
			spec++
			if _, ok := codes[c]; !ok {
				t.Errorf("the spec's code %d has no client.Code… constant", c)
			}
		}
	}
	if spec != len(codes) {
		t.Errorf("the spec has %d codes, the client %d", spec, len(codes))
	}

	for _, p := range [][2]string{
		{string(client.StatusActive), string(oapi.KeyViewActive)}, {string(client.StatusInactive), string(oapi.KeyViewInactive)},
		{string(client.StatusExpired), string(oapi.KeyViewExpired)},
		{string(client.TypeSecret), string(oapi.KeyViewSecret)}, {string(client.TypePublishable), string(oapi.KeyViewPublishable)},
		{string(client.UpdateStatusActive), string(oapi.UpdateActive)}, {string(client.UpdateStatusInactive), string(oapi.UpdateInactive)},
		{string(client.CreatedByKey), string(oapi.CreatedByKey)}, {string(client.CreatedByJWT), string(oapi.CreatedByJWT)},
		{string(client.CreatedByPlatform), string(oapi.CreatedByPlatform)},
		{string(client.AuditCreate), string(oapi.AuditCreate)}, {string(client.AuditRegenerate), string(oapi.AuditRegenerate)},
		{string(client.AuditUpdate), string(oapi.AuditUpdate)}, {string(client.AuditDisable), string(oapi.AuditDisable)},
		{string(client.AuditEnable), string(oapi.AuditEnable)}, {string(client.AuditDelete), string(oapi.AuditDelete)},
		{string(client.AuditBootstrap), string(oapi.AuditBootstrap)},
		{string(client.ModeLive), string(oapi.ModeLive)}, {string(client.ModeTest), string(oapi.ModeTest)},
		{string(client.LocationBody), string(oapi.Body)}, {string(client.LocationQuery), string(oapi.Query)},
		{string(client.LocationPath), string(oapi.Path)}, {string(client.LocationHeader), string(oapi.Header)},
		{string(client.VerifyValid), string(oapi.VerifyValid)}, {string(client.VerifyNotFound), string(oapi.VerifyNotFound)},
		{string(client.VerifyRevoked), string(oapi.VerifyRevoked)}, {string(client.VerifyDisabled), string(oapi.VerifyDisabled)},
		{string(client.VerifyExpired), string(oapi.VerifyExpired)}, {string(client.VerifyRateLimited), string(oapi.VerifyRateLimited)},
		{string(client.VerifyInsufficientPermissions), string(oapi.VerifyInsufficientPermissions)},
		{string(client.VerifiedLive), string(oapi.VerifiedLive)}, {string(client.VerifiedTest), string(oapi.VerifiedTest)},
		// A created key's status and type convert to the view's.
		{string(client.KeyStatus(oapi.ACTIVE)), string(client.StatusActive)}, {string(client.KeyType(oapi.PUBLISHABLE)), string(client.TypePublishable)},
	} {
		if p[0] != p[1] {
			t.Errorf("%q re-exported as %q", p[1], p[0])
		}
	}
	for _, ok := range []bool{
		client.StatusActive.Valid(), client.StatusInactive.Valid(), client.StatusExpired.Valid(),
		client.TypeSecret.Valid(), client.TypePublishable.Valid(),
		client.UpdateStatusActive.Valid(), client.UpdateStatusInactive.Valid(),
		client.CreatedByKey.Valid(), client.CreatedByJWT.Valid(), client.CreatedByPlatform.Valid(),
		client.ModeLive.Valid(), client.ModeTest.Valid(),
		client.VerifyValid.Valid(), client.VerifyNotFound.Valid(), client.VerifyRevoked.Valid(), client.VerifyDisabled.Valid(),
		client.VerifyExpired.Valid(), client.VerifyRateLimited.Valid(), client.VerifyInsufficientPermissions.Valid(),
		client.VerifiedLive.Valid(), client.VerifiedTest.Valid(),
		client.LocationBody.Valid(), client.LocationQuery.Valid(), client.LocationPath.Valid(), client.LocationHeader.Valid(),
	} {
		if !ok {
			t.Error("a re-exported value is not valid in the spec")
		}
	}
}

// The examples, and the fake server they run against, need nothing from
// client/oapi: what a caller passes or compares is exported by client.
func TestExamplesDoNotImportOapi(t *testing.T) {
	for _, name := range []string{"example_test.go", "fakeapi_test.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if strings.Contains(imp.Path.Value, "client/oapi") {
				t.Errorf("%s imports %s", name, imp.Path.Value)
			}
		}
	}
}

// packageDoc reads the package's documentation as godoc does.
func packageDoc(t *testing.T) *doc.Package {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*ast.File
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
	}
	p, err := doc.NewFromFiles(fset, parsed, "github.com/hsrcpay/apikeys/client")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every exported name has a doc comment: a declaration's own, or a trailing
// line comment for a value in a documented group.
func TestEveryExportedNameIsDocumented(t *testing.T) {
	p := packageDoc(t)
	if !strings.HasPrefix(p.Doc, "Package client is") {
		t.Errorf("package doc starts %q", p.Doc[:min(40, len(p.Doc))])
	}
	values := func(where string, vs []*doc.Value) {
		for _, v := range vs {
			for _, spec := range v.Decl.Specs {
				vs := spec.(*ast.ValueSpec)
				for _, n := range vs.Names {
					if !n.IsExported() {
						continue
					}
					if vs.Doc.Text() == "" && vs.Comment.Text() == "" && !(len(v.Decl.Specs) == 1 && v.Doc != "") {
						t.Errorf("%s%s has no doc comment", where, n.Name)
					}
				}
			}
		}
	}
	funcs := func(where string, fs []*doc.Func) {
		for _, f := range fs {
			if ast.IsExported(f.Name) && strings.TrimSpace(f.Doc) == "" {
				t.Errorf("%s%s has no doc comment", where, f.Name)
			}
		}
	}
	values("", p.Consts)
	values("", p.Vars)
	funcs("", p.Funcs)
	for _, typ := range p.Types {
		if strings.TrimSpace(typ.Doc) == "" {
			t.Errorf("type %s has no doc comment", typ.Name)
		}
		values("", typ.Consts)
		values("", typ.Vars)
		funcs("", typ.Funcs)
		funcs(typ.Name+".", typ.Methods)
		// Exported struct fields too.
		st, ok := typ.Decl.Specs[0].(*ast.TypeSpec).Type.(*ast.StructType)
		if !ok {
			continue
		}
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				if n.IsExported() && f.Doc.Text() == "" && f.Comment.Text() == "" {
					t.Errorf("field %s.%s has no doc comment", typ.Name, n.Name)
				}
			}
		}
	}
	// Each operation has an example.
	examples := map[string]bool{}
	b, _ := os.ReadFile("example_test.go")
	for _, m := range regexp.MustCompile(`(?m)^func (Example\w*)\(\)`).FindAllStringSubmatch(string(b), -1) {
		examples[m[1]] = true
	}
	for _, want := range []string{"ExampleClient_CreateAPIKey", "ExampleClient_RegenerateAPIKey", "ExampleClient_GetAPIKey",
		"ExampleClient_ListAPIKeys", "ExampleClient_UpdateAPIKey", "ExampleClient_DeleteAPIKey", "ExampleClient_ListAuditEvents",
		"ExampleVerifyAuditChain", "ExampleClient_VerifyKey"} {
		if !examples[want] {
			t.Errorf("no %s", want)
		}
	}
}

// What `go doc` prints: the Err kinds and codes with their values, no
// composite literal of an unexported type.
func TestGoDocOutput(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool:", err)
	}
	out, err := exec.CommandContext(ctx, goTool, "doc", "-all", ".").CombinedOutput() //nolint:gosec // the go toolchain found in PATH
	if err != nil {
		t.Fatalf("go doc: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		`ErrConflict Kind = "conflict"`,
		`ErrUnavailable Kind = "unavailable"`,
		`ErrTimeout Kind = "timeout"`,
		`ErrCanceled Kind = "canceled"`,
		`ErrInvalidArgument Kind = "invalid argument"`,
		`CodeDuplicateName ErrorCode = 40900`,
		`StatusActive   KeyStatus = "ACTIVE"`,
		`func WithGracePeriod(d time.Duration) RegenerateOption`,
		`type TransportError struct`,
		`type ArgumentError struct`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("go doc lacks %q", want)
		}
	}
	for _, bad := range []string{"&kind{", "errors.New(", "= oapi.Code", "= oapi.KeyView", "= oapi.AuditCreate", "= oapi.UpdateActive", "= oapi.UpdateInactive"} {
		if strings.Contains(text, bad) {
			t.Errorf("go doc shows %q", bad)
		}
	}
}
