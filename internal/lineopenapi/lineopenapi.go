// Package lineopenapi checks Messaging API traffic recorded by linesim against LINE's own OpenAPI
// description (messaging-api.yml from line/line-openapi).
//
// linesim and the bot are both written by us, so a test where they agree proves only that they
// share our reading of LINE's documentation. Checking every recorded request and answer against
// LINE's machine-readable contract catches the cases where that reading is wrong: a field the bot
// misspells, a status the emulator invents, a response shape the SDK would not parse on the real
// platform.
//
// The description is not copied into the project: it lives in ../shared/line-openapi/ beside the
// checkout, both on laptops and in CI. Outside CI a missing file skips the check; in CI it fails.
package lineopenapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/taipei-doit/ecardbot/linesim"
)

// SpecPath is where the description lives relative to the module root: the shared folder is a
// sibling of the checkout, here and in CI.
const SpecPath = "../shared/line-openapi/messaging-api.yml"

// spec is the loaded description and a router over its paths.
type spec struct {
	doc    *openapi3.T
	router routers.Router
}

// errSpecMissing marks a description that is not there, which outside CI is a reason to skip
// rather than fail.
var errSpecMissing = errors.New("LINE's messaging-api.yml is missing")

// loadSpec parses the 10,000-line description once per test binary: the bot's harness checks
// its requests at the end of every test, and parsing it each time would dominate the run.
var loadSpec = sync.OnceValues(func() (*spec, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, filepath.FromSlash(SpecPath))
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s", errSpecMissing, path)
		}
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	// The spec names https://api.line.me, and https://api-data.line.me for blob operations, but
	// linesim serves both on one loopback address. Without servers the legacy router matches on
	// the path alone (it ignores per-operation servers), which is what we want.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", path, err)
	}
	// Rich menu images travel as image/png or image/jpeg, which kin-openapi has no decoder for;
	// read them as opaque bytes like application/octet-stream. Registered only when absent, so a
	// test binary that installs its own decoder keeps it.
	for _, ct := range []string{"image/png", "image/jpeg"} {
		if openapi3filter.RegisteredBodyDecoder(ct) == nil {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
		}
	}
	return &spec{doc: doc, router: router}, nil
})

// moduleRoot walks up from the working directory (a test's package directory) to go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// CheckRequests validates every request in reqs, and the 2xx answers linesim gave them, against
// LINE's messaging-api.yml, and reports each mismatch with tb.Errorf. A path the spec does not
// know is a mismatch too: the bot would get a 404 from the real LINE.
//
// Requests answered by an injected fault (Request.Fault) are checked on the way in only: the
// test chose that answer, so it says nothing about the emulator. Answers that are not 2xx are
// not checked either; only the success shapes are what the SDK parses into models.
//
// When the description is absent it skips the test outside CI and fails it under CI=true, like
// the tests that need PostgreSQL.
func CheckRequests(tb testing.TB, reqs []linesim.Request) {
	tb.Helper()
	s, err := loadSpec()
	if errors.Is(err, errSpecMissing) {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%v; CI must provide ../shared/line-openapi beside the checkout", err)
		}
		tb.Skipf("%v; skipping the check against LINE's OpenAPI description", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range reqs {
		for _, err := range s.check(r) {
			tb.Errorf("LINE spec: %s %s: %s", r.Method, r.Path, redact(err.Error(), r.Header))
		}
	}
}

// sdkNulls lists top-level request fields that line-bot-sdk-go v8.14.0 always sends as null,
// by operationId. Its generated models declare them as slices without omitempty
// (PushMessageRequest.CustomAggregationUnits, MulticastRequest.CustomAggregationUnits), so
// every push and multicast carries "customAggregationUnits":null, which the spec's non-nullable
// array rejects. LINE accepts it (the SDK is LINE's own and used in production), so this is the
// SDK's quirk, not the bot's mistake: the field is dropped before validation, and only when null.
var sdkNulls = map[string][]string{
	"pushMessage": {"customAggregationUnits"},
	"multicast":   {"customAggregationUnits"},
}

// options are the same for every request. MultiError reports all problems at once; schema
// error details are off so that messages name the JSON pointer and reason without dumping the
// schema and the whole body (which would include user IDs and message text).
func options() *openapi3filter.Options {
	o := &openapi3filter.Options{
		MultiError:                        true,
		IncludeResponseStatus:             true,
		RejectWhenRequestBodyNotSpecified: true,
		SkipSettingDefaults:               true,
		AuthenticationFunc:                bearerPresent,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.DisableSchemaErrorDetails(),
			openapi3.WithStringFormatValidators(formats),
		},
	}
	o.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string {
		return fmt.Sprintf("at %s: %s", orRoot(pointer(err)), schemaReason(err))
	})
	return o
}

// formats adds the string formats LINE's spec uses that kin-openapi leaves unchecked by default
// (it checks date-time and int32/int64 already). They are passed per validation rather than
// registered globally, so other tests in the same binary see kin-openapi's defaults.
var formats = map[string]openapi3.StringFormatValidator{
	// X-Line-Retry-Key: LINE takes a UUID "generated by any method", so any version goes.
	"uuid": openapi3.NewRegexpFormatValidator(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`),
	// Image, video and action URLs: LINE needs absolute ones; a relative URL would never load.
	"uri": openapi3.NewCallbackValidator(func(v string) error {
		u, err := url.Parse(v)
		if err != nil || !u.IsAbs() || u.Host == "" {
			return errors.New("not an absolute URL")
		}
		return nil
	}),
}

func schemaReason(err *openapi3.SchemaError) string {
	if err.Origin != nil {
		return err.Origin.Error()
	}
	if err.Reason != "" {
		return err.Reason
	}
	return fmt.Sprintf("doesn't match schema %q", err.SchemaField)
}

// bearerPresent checks only that a bearer token is there: whether it is the right one is
// linesim's business (it answers 401), and this package must never print it.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	sch := in.SecurityScheme
	if sch == nil || sch.Type != "http" || !strings.EqualFold(sch.Scheme, "bearer") {
		return in.NewError(fmt.Errorf("security scheme %q is not HTTP bearer", in.SecuritySchemeName))
	}
	auth := in.RequestValidationInput.Request.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return in.NewError(errors.New("no Authorization: Bearer header"))
	}
	return nil
}

// check returns every mismatch between r and the spec.
func (s *spec) check(r linesim.Request) []error {
	ctx := context.Background()
	u := &url.URL{Scheme: "https", Host: "api.line.me", Path: r.Path, RawQuery: r.Query}
	hreq, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return []error{err}
	}
	hreq.Header = r.Header.Clone()
	// The SDK sets X-Line-Retry-Key on every push, multicast, narrowcast and broadcast, empty when
	// the caller passes "" for "no retry key" (its documented use). LINE and linesim read an empty
	// key as none, but the spec's format "uuid" rejects "". Like sdkNulls, an SDK quirk: an empty
	// key counts as absent, and any other value must be a UUID.
	if vs, ok := hreq.Header["X-Line-Retry-Key"]; ok && len(vs) == 1 && vs[0] == "" {
		hreq.Header.Del("X-Line-Retry-Key")
	}
	route, params, err := s.router.FindRoute(hreq)
	if err != nil {
		return []error{fmt.Errorf("no such operation in LINE's spec (%w)", err)}
	}
	body := r.Body
	if names := sdkNulls[route.Operation.OperationID]; len(names) > 0 {
		body = dropNulls(body, names)
	}
	if len(body) > 0 {
		hreq.Body = io.NopCloser(bytes.NewReader(body))
		hreq.ContentLength = int64(len(body))
	}
	opts := options()
	in := &openapi3filter.RequestValidationInput{Request: hreq, PathParams: params, Route: route, Options: opts}
	var errs []error
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		errs = append(errs, flatten("request", err)...)
	}
	if rb := route.Operation.RequestBody; rb != nil && rb.Value != nil {
		errs = append(errs, s.shape("request: body", rb.Value.Content, hreq.Header.Get("Content-Type"), body, opts)...)
	}
	if r.Fault || r.Status/100 != 2 {
		return errs
	}
	header := http.Header{}
	if ct := responseType(route, r.Status, r.Response); ct != "" {
		header.Set("Content-Type", ct)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 r.Status,
		Header:                 header,
		Options:                opts,
	}
	out.SetBodyBytes(r.Response)
	where := fmt.Sprintf("response %d", r.Status)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, flatten(where, err)...)
	}
	if ref := route.Operation.Responses.Status(r.Status); ref != nil && ref.Value != nil {
		errs = append(errs, s.shape(where+": body", ref.Value.Content, header.Get("Content-Type"), r.Response, opts)...)
	}
	return errs
}

// shape runs the shapeChecker over a JSON body. Bodies that are not JSON, or that kin-openapi
// already rejected as unparsable, are left to its report.
func (s *spec) shape(where string, content openapi3.Content, contentType string, body []byte, opts *openapi3filter.Options) []error {
	mt := content.Get(contentType)
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil || !strings.Contains(contentType, "json") {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil
	}
	c := &shapeChecker{doc: s.doc, opts: append([]openapi3.SchemaValidationOption{openapi3.MultiErrors()}, opts.SchemaValidationOptions...)}
	c.check("", mt.Schema.Value, v)
	out := make([]error, len(c.errs))
	for i, e := range c.errs {
		out[i] = fmt.Errorf("%s: %w", where, e)
	}
	return out
}

// responseType guesses the Content-Type linesim answered with, which Request does not record:
// the spec's only media type for that status, or JSON when the body is JSON and the spec offers
// it. Guessing the spec's own type means a wrong Content-Type from the emulator goes unnoticed,
// but a body in the wrong format does not.
func responseType(route *routers.Route, status int, body []byte) string {
	ref := route.Operation.Responses.Status(status)
	if ref == nil {
		ref = route.Operation.Responses.Default()
	}
	if ref == nil || ref.Value == nil || len(ref.Value.Content) == 0 {
		return ""
	}
	content := ref.Value.Content
	if len(content) == 1 {
		for ct := range content {
			return ct
		}
	}
	if content.Get("application/json") != nil && json.Valid(body) {
		return "application/json"
	}
	return ""
}

// dropNulls removes the named top-level fields from a JSON object when they are null. Anything
// that is not a JSON object is returned unchanged, for the validator to report.
func dropNulls(body []byte, names []string) []byte {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return body
	}
	changed := false
	for _, n := range names {
		if v, ok := obj[n]; ok && bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			delete(obj, n)
			changed = true
		}
	}
	if !changed {
		return body
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return body
	}
	return out
}

// flatten splits kin-openapi's nested MultiErrors so that each problem gets its own line in the
// test output, prefixed with where it was found (request body, which parameter, response).
func flatten(where string, err error) []error {
	var (
		me    openapi3.MultiError
		inner error
	)
	switch e := err.(type) {
	case openapi3.MultiError:
		me = e
	case *openapi3filter.RequestError:
		switch {
		case e.Parameter != nil:
			where += fmt.Sprintf(": parameter %q in %s", e.Parameter.Name, e.Parameter.In)
		case e.RequestBody != nil:
			where += ": body"
		}
		if e.Reason != "" {
			where += ": " + e.Reason
		}
		inner = e.Err
	case *openapi3filter.ResponseError:
		if e.Reason != "" {
			where += ": " + e.Reason
		}
		inner = e.Err
	default:
		if parts := expand(err); len(parts) > 1 {
			me = parts
			break
		}
		return []error{fmt.Errorf("%s: %w", where, err)}
	}
	if inner != nil {
		if !errors.As(inner, &me) {
			return []error{fmt.Errorf("%s: %w", where, inner)}
		}
	}
	if me == nil {
		return []error{errors.New(where)}
	}
	var out []error
	for _, e := range me {
		out = append(out, flatten(where, e)...)
	}
	return out
}

// expand splits a MultiError, and a schema error for a failed allOf, into the errors they hold.
// LINE's concrete types are allOf their base, so without this every problem in a message would
// read "doesn't match all schemas from allOf" with the real cause buried in its text. The inner
// errors already carry the full JSON pointer.
func expand(err error) []error {
	if me, ok := err.(openapi3.MultiError); ok {
		var out []error
		for _, e := range me {
			out = append(out, expand(e)...)
		}
		return out
	}
	if se, ok := err.(*openapi3.SchemaError); ok && se.SchemaField == "allOf" {
		for e := se.Origin; e != nil; e = errors.Unwrap(e) {
			if me, ok := e.(openapi3.MultiError); ok {
				return expand(me)
			}
		}
	}
	return []error{err}
}

// redact removes the request's credentials from a message, in case a validator ever echoes a
// header value: test logs are kept, and the token is a secret even in tests by our rules.
// Values shorter than 8 bytes are left alone: they are no real token, and replacing them would
// garble the message.
func redact(msg string, h http.Header) string {
	for _, v := range h.Values("Authorization") {
		_, token, _ := strings.Cut(v, " ")
		for _, secret := range []string{v, strings.TrimSpace(token)} {
			if len(secret) >= 8 {
				msg = strings.ReplaceAll(msg, secret, "<redacted>")
			}
		}
	}
	return msg
}
