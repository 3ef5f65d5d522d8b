package client_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
)

// The package's types are its own (go doc shows their fields), but not a
// second source of truth: every field of the spec's schema (as generated into
// client/oapi) has a field with the same JSON name and options and the
// corresponding type, and every enum has exactly the spec's values.
func TestTypesMatchTheSpec(t *testing.T) {
	// The generated type each of ours stands for; "" for types that are the
	// same on both sides (strings, times, maps of strings).
	ours := map[string]string{
		"APIKey": "APIKey", "APIKeyView": "APIKeyView", "CreateAPIKeyRequest": "CreateAPIKeyRequest",
		"UpdateAPIKeyRequest": "UpdateAPIKeyRequest", "CreatedBy": "CreatedBy", "FieldError": "FieldError",
		"AuditEvent": "AuditEvent", "APIKeyList": "APIKeyPage", "AuditEventList": "AuditEventPage",
		"Permissions": "Permissions", "Metadata": "Metadata", "RateLimit": "RateLimit",
		"Credits": "Credits", "CreditRefill": "CreditRefill", "CreditRefillInterval": "RefillInterval",
		"APIKeyStatus": "KeyStatus", "APIKeyViewStatus": "KeyStatus", "ListAPIKeysParamsStatus": "KeyStatus",
		"APIKeyType": "KeyType", "APIKeyViewType": "KeyType", "ListAPIKeysParamsType": "KeyType", "VerifyAPIKeyResultType": "KeyType",
		"UpdateAPIKeyRequestStatus": "UpdateStatus", "CreatedByKind": "CreatedByKind", "AuditAction": "AuditAction",
		"AuditEventMode": "Mode", "FieldErrorLocation": "FieldLocation", "VerifyCode": "VerifyCode",
		"VerifyAPIKeyResultMode": "VerifiedMode", "ErrorCode": "ErrorCode",
	}
	// shape names a type as the other side must have it.
	var shape func(reflect.Type) string
	shape = func(typ reflect.Type) string {
		switch {
		case typ == reflect.TypeFor[time.Time]():
			return "time"
		case typ.PkgPath() == reflect.TypeFor[oapi.APIKey]().PkgPath():
			name, ok := ours[typ.Name()]
			if !ok {
				t.Errorf("the spec's %s has no counterpart in package client", typ.Name())
			}
			return name
		case typ.PkgPath() == reflect.TypeFor[client.APIKey]().PkgPath():
			return typ.Name()
		}
		switch typ.Kind() {
		case reflect.Pointer:
			return "*" + shape(typ.Elem())
		case reflect.Slice:
			return "[]" + shape(typ.Elem())
		case reflect.Map:
			return "map[" + shape(typ.Key()) + "]" + shape(typ.Elem())
		}
		return typ.Kind().String()
	}
	for _, p := range [][2]reflect.Type{
		{reflect.TypeFor[oapi.APIKey](), reflect.TypeFor[client.APIKey]()},
		{reflect.TypeFor[oapi.APIKeyView](), reflect.TypeFor[client.APIKeyView]()},
		{reflect.TypeFor[oapi.CreateAPIKeyRequest](), reflect.TypeFor[client.CreateAPIKeyRequest]()},
		{reflect.TypeFor[oapi.UpdateAPIKeyRequest](), reflect.TypeFor[client.UpdateAPIKeyRequest]()},
		{reflect.TypeFor[oapi.CreatedBy](), reflect.TypeFor[client.CreatedBy]()},
		{reflect.TypeFor[oapi.RateLimit](), reflect.TypeFor[client.RateLimit]()},
		{reflect.TypeFor[oapi.Credits](), reflect.TypeFor[client.Credits]()},
		{reflect.TypeFor[oapi.CreditRefill](), reflect.TypeFor[client.CreditRefill]()},
		{reflect.TypeFor[oapi.FieldError](), reflect.TypeFor[client.FieldError]()},
		{reflect.TypeFor[oapi.AuditEvent](), reflect.TypeFor[client.AuditEvent]()},
		{reflect.TypeFor[oapi.APIKeyList](), reflect.TypeFor[client.APIKeyPage]()},
		{reflect.TypeFor[oapi.AuditEventList](), reflect.TypeFor[client.AuditEventPage]()},
	} {
		gen, mine := p[0], p[1]
		fields := func(typ reflect.Type) map[string]reflect.StructField {
			m := map[string]reflect.StructField{}
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				m[name] = f
			}
			return m
		}
		g, o := fields(gen), fields(mine)
		delete(g, "object") // always the same constant ("api_key", "list", …): nothing to read
		for name, gf := range g {
			of, ok := o[name]
			switch {
			case !ok:
				t.Errorf("%s lacks %s's field %q", mine.Name(), gen.Name(), name)
			case gf.Tag.Get("json") != of.Tag.Get("json"):
				t.Errorf("%s.%s: json tag %q, the spec's %q", mine.Name(), of.Name, of.Tag.Get("json"), gf.Tag.Get("json"))
			case shape(gf.Type) != shape(of.Type):
				t.Errorf("%s.%s is %s, the spec's %s", mine.Name(), of.Name, shape(of.Type), shape(gf.Type))
			}
		}
		for name := range o {
			if _, ok := g[name]; !ok {
				t.Errorf("%s has a field %q the spec's %s lacks", mine.Name(), name, gen.Name())
			}
		}
	}

	// Enum values: the spec's (the constants of client/oapi, read from its
	// source) and ours (read from this package's source), type by type.
	values := func(dir string, pattern string) map[string][]string {
		fset := token.NewFileSet()
		files, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					id, ok := vs.Type.(*ast.Ident)
					if !ok || len(vs.Values) != 1 {
						continue
					}
					lit, ok := vs.Values[0].(*ast.BasicLit)
					if !ok {
						continue
					}
					out[id.Name] = append(out[id.Name], lit.Value)
				}
			}
		}
		for k := range out {
			slices.Sort(out[k])
		}
		return out
	}
	gen, mine := values("oapi", "*.gen.go"), values(".", "*.go")
	checked := map[string]bool{}
	for genType, ourType := range ours {
		want, ok := gen[genType]
		if !ok {
			continue // a struct or map type
		}
		checked[ourType] = true
		if !slices.Equal(mine[ourType], want) {
			t.Errorf("client.%s has the values %v, the spec's %s %v", ourType, mine[ourType], genType, want)
		}
	}
	for _, typ := range []string{"RefillInterval", "KeyStatus", "KeyType", "UpdateStatus", "CreatedByKind", "AuditAction", "Mode", "FieldLocation", "VerifyCode", "VerifiedMode", "ErrorCode"} {
		if !checked[typ] {
			t.Errorf("client.%s was compared with no enum of the spec", typ)
		}
	}
	// Valid agrees with the constants.
	for c := oapi.ErrorCode(10000); c < 100000; c++ {
		if c.Valid() != client.ErrorCode(c).Valid() {
			t.Errorf("code %d: Valid is %v in the spec, %v in the client", c, c.Valid(), client.ErrorCode(c).Valid())
		}
	}
	for _, ok := range []bool{
		client.StatusActive.Valid(), client.StatusInactive.Valid(), client.StatusExpired.Valid(), !client.KeyStatus("active").Valid(),
		client.TypeSecret.Valid(), client.TypePublishable.Valid(), !client.KeyType("").Valid(),
		client.UpdateStatusActive.Valid(), client.UpdateStatusInactive.Valid(), !client.UpdateStatus("EXPIRED").Valid(),
		client.CreatedByKey.Valid(), client.CreatedByJWT.Valid(), client.CreatedByPlatform.Valid(),
		client.AuditCreate.Valid(), client.AuditBootstrap.Valid(), !client.AuditAction("explode").Valid(),
		client.ModeLive.Valid(), client.ModeTest.Valid(), !client.Mode("prod").Valid(),
		client.VerifyValid.Valid(), client.VerifyInsufficientPermissions.Valid(), !client.VerifyCode("OK").Valid(),
		client.VerifiedLive.Valid(), client.VerifiedTest.Valid(), client.VerifyUsageExceeded.Valid(),
		client.RefillDaily.Valid(), client.RefillMonthly.Valid(), !client.RefillInterval("weekly").Valid(),
		client.LocationBody.Valid(), client.LocationQuery.Valid(), client.LocationPath.Valid(), client.LocationHeader.Valid(),
	} {
		if !ok {
			t.Error("Valid disagrees with the constants")
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
		"type APIKey struct",
		"Status KeyStatus `json:\"status\"`",
		"Permissions Permissions `json:\"permissions\"`",
		`ErrNotConfigured Kind = "client not configured: create it with client.New"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("go doc lacks %q", want)
		}
	}
	for _, bad := range []string{"&kind{", "errors.New(", "= oapi.", "oapi.APIKey", "oapi.Permissions"} {
		if strings.Contains(text, bad) {
			t.Errorf("go doc shows %q", bad)
		}
	}
}
