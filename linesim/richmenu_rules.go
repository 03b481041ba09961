package linesim

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg" // rich-menu images may be JPEG
	_ "image/png"  // or PNG
	"math"
	"mime"
	"net/http"
	"regexp"
)

const (
	maxRichMenus      = 1000
	maxAliases        = 1000
	maxRichMenuAreas  = 20
	maxRichMenuImage  = 1 << 20 // 1 MB
	minRichMenuWidth  = 800
	maxRichMenuWidth  = 2500
	minRichMenuHeight = 250
	minRichMenuRatio  = 1.45 // width / height
)

var aliasIDPattern = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// sizeProblem returns what is wrong with a rich-menu or image size, or "" when it fits LINE's
// rules: width 800–2500 px, height 250 px or more, width/height 1.45 or more.
func sizeProblem(w, h int64) string {
	switch {
	case w < minRichMenuWidth || w > maxRichMenuWidth:
		return fmt.Sprintf("width must be between %d and %d", minRichMenuWidth, maxRichMenuWidth)
	case h < minRichMenuHeight:
		return fmt.Sprintf("height must be %d or more", minRichMenuHeight)
	case float64(w)/float64(h) < minRichMenuRatio:
		return fmt.Sprintf("width / height must be %.2f or more", minRichMenuRatio)
	}
	return ""
}

// integer checks m[key] is an integer number no smaller than lo and returns it.
func (ck *checker) integer(m map[string]any, prop, key string, lo int64) int64 {
	p := field(prop, key)
	f, ok := m[key].(float64)
	if !ok || f != math.Trunc(f) {
		ck.add(p, "must be an integer")
		return 0
	}
	if int64(f) < lo {
		ck.add(p, "must be %d or more", lo)
	}
	return int64(f)
}

// richMenu validates a rich menu object: size, selected, name ≤300, chatBarText ≤14, at most 20
// areas with bounds inside the menu and valid actions (richmenuswitch allowed).
func (ck *checker) richMenu(m map[string]any) {
	var w, h int64
	if size := ck.obj(m, "", "size", true); size != nil {
		before := len(ck.details)
		w, h = ck.integer(size, "size", "width", 1), ck.integer(size, "size", "height", 1)
		if len(ck.details) == before {
			if p := sizeProblem(w, h); p != "" {
				ck.add("size", "%s", p)
			}
		}
	}
	if _, ok := m["selected"].(bool); !ok {
		ck.add("selected", "must be specified as a boolean")
	}
	ck.str(m, "", "name", true, 1, 300)
	ck.str(m, "", "chatBarText", true, 1, 14)
	if m["areas"] == nil {
		ck.add("areas", "must be specified")
	}
	for i, v := range ck.arr(m, "", "areas", 0, maxRichMenuAreas) {
		p := idx("areas", i)
		area, ok := v.(map[string]any)
		if !ok {
			ck.add(p, "must be an object")
			continue
		}
		if b := ck.obj(area, p, "bounds", true); b != nil {
			bp := field(p, "bounds")
			x, y := ck.integer(b, bp, "x", 0), ck.integer(b, bp, "y", 0)
			bw, bh := ck.integer(b, bp, "width", 1), ck.integer(b, bp, "height", 1)
			if w > 0 && h > 0 && (x+bw > w || y+bh > h) {
				ck.add(bp, "The area must be inside the rich menu (%dx%d)", w, h)
			}
		}
		if a := ck.obj(area, p, "action", true); a != nil {
			ck.action(field(p, "action"), a, inRichMenu)
		}
	}
}

// checkRichMenuImage applies LINE's image rules: PNG or JPEG (else 415), at most 1 MB (else
// 413), decodable, of the menu's exact size and within the size rules (else 400).
// It returns the status and message to answer, or 0 when the image is acceptable.
func checkRichMenuImage(contentType string, data []byte, menuW, menuH int64) (int, string) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt != "image/png" && mt != "image/jpeg" {
		return http.StatusUnsupportedMediaType, "Unsupported Media Type: the image must be image/png or image/jpeg"
	}
	if len(data) > maxRichMenuImage {
		return http.StatusRequestEntityTooLarge, "The image must be 1 MB or smaller"
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return http.StatusBadRequest, "The image could not be decoded"
	}
	if "image/"+format != mt {
		return http.StatusBadRequest, fmt.Sprintf("The image is %s but Content-Type says %s", format, mt)
	}
	w, h := int64(cfg.Width), int64(cfg.Height)
	if p := sizeProblem(w, h); p != "" {
		return http.StatusBadRequest, "Invalid image size: " + p
	}
	if w != menuW || h != menuH {
		return http.StatusBadRequest, fmt.Sprintf("The image is %dx%d but the rich menu is %dx%d", w, h, menuW, menuH)
	}
	return 0, ""
}
