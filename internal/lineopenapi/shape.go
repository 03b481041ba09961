package lineopenapi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// shapeChecker finds what kin-openapi's validation lets through in LINE's spec, whose schemas use
// the "inheritance" style: a base such as Message or Action carries a discriminator and the
// concrete types (TextMessage, PostbackAction, …) are allOf the base. kin-openapi applies a
// discriminator only inside oneOf/anyOf, so on its own it checks every message against Message
// alone: an unknown "type", or a text message without "text", would pass. The checker follows
// each discriminator to its mapped schema and validates against that.
//
// It also reports properties no schema on the path defines. LINE's schemas do not forbid extra
// properties, so a misspelt field ("notificationDisable") would otherwise pass, and LINE would
// silently ignore it.
type shapeChecker struct {
	doc  *openapi3.T
	opts []openapi3.SchemaValidationOption
	errs []error
}

func (c *shapeChecker) check(path string, s *openapi3.Schema, v any) {
	if s == nil {
		return
	}
	switch x := v.(type) {
	case []any:
		if s.Items != nil {
			for i, item := range x {
				c.check(path+"/"+strconv.Itoa(i), s.Items.Value, item)
			}
		}
	case map[string]any:
		c.object(path, s, x)
	}
}

func (c *shapeChecker) object(path string, s *openapi3.Schema, x map[string]any) {
	props := map[string]*openapi3.Schema{}
	open := false // the schema allows properties it does not name
	seen := map[*openapi3.Schema]bool{}
	var collect func(s *openapi3.Schema)
	collect = func(s *openapi3.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		for k, p := range s.Properties {
			if p != nil && props[k] == nil {
				props[k] = p.Value
			}
		}
		if ap := s.AdditionalProperties; ap.Schema != nil || ap.Has != nil && *ap.Has {
			open = true
		}
		// Without a discriminator kin-openapi has already chosen among oneOf/anyOf branches; this
		// checker cannot tell which one matched, so it leaves their properties alone.
		if len(s.OneOf) > 0 || len(s.AnyOf) > 0 {
			open = true
		}
		for _, a := range s.AllOf {
			if a != nil {
				collect(a.Value)
			}
		}
		d := s.Discriminator
		if d == nil || len(s.OneOf) > 0 || len(s.AnyOf) > 0 {
			return
		}
		typ, _ := x[d.PropertyName].(string)
		ref, ok := d.Mapping[typ]
		if !ok {
			c.errs = append(c.errs, fmt.Errorf("at %s: %s %q is not one LINE defines", orRoot(path), d.PropertyName, typ))
			open = true // nothing more to say about an object of unknown type
			return
		}
		mapped := c.mapped(ref)
		if mapped == nil {
			c.errs = append(c.errs, fmt.Errorf("at %s: spec maps %s %q to %s, which it does not define", orRoot(path), d.PropertyName, typ, ref.Ref))
			return
		}
		if seen[mapped] {
			return
		}
		if err := mapped.VisitJSON(x, c.opts...); err != nil {
			for _, e := range expand(err) {
				c.errs = append(c.errs, fmt.Errorf("as %s: %w", schemaName(ref.Ref), prefixed(path, e)))
			}
		}
		collect(mapped)
	}
	collect(s)
	for k, val := range x {
		p, ok := props[k]
		if !ok {
			if !open {
				c.errs = append(c.errs, fmt.Errorf("at %s/%s: property not defined in LINE's schema", path, k))
			}
			continue
		}
		c.check(path+"/"+k, p, val)
	}
}

// mapped resolves a discriminator mapping, which the loader may leave unresolved.
func (c *shapeChecker) mapped(ref openapi3.MappingRef) *openapi3.Schema {
	if ref.Value != nil {
		return ref.Value
	}
	if c.doc.Components == nil {
		return nil
	}
	if sr := c.doc.Components.Schemas[schemaName(ref.Ref)]; sr != nil {
		return sr.Value
	}
	return nil
}

func schemaName(ref string) string { return strings.TrimPrefix(ref, "#/components/schemas/") }

func orRoot(path string) string {
	if path == "" {
		return "/"
	}
	return path
}

// prefixed places an error found inside a nested value at its full path in the body.
func prefixed(path string, err error) error {
	var se *openapi3.SchemaError
	if !errors.As(err, &se) {
		return fmt.Errorf("at %s: %w", orRoot(path), err)
	}
	return fmt.Errorf("at %s: %s", orRoot(path+pointer(se)), schemaReason(se))
}

func pointer(se *openapi3.SchemaError) string {
	p := se.JSONPointer()
	if len(p) == 0 {
		return ""
	}
	return "/" + strings.Join(p, "/")
}
