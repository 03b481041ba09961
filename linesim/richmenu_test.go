package linesim

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"
)

// menuImage encodes a solid w×h image as png, jpeg or gif. A raw PNG is stored uncompressed,
// to exceed size limits.
func menuImage(tb testing.TB, format string, w, h int) []byte {
	tb.Helper()
	rect := image.Rect(0, 0, w, h)
	var buf bytes.Buffer
	var err error
	if format == "gif" {
		err = gif.Encode(&buf, image.NewPaletted(rect, color.Palette{color.White, color.Black}), nil)
	} else {
		img := image.NewRGBA(rect)
		draw.Draw(img, rect, image.NewUniform(color.RGBA{0x06, 0xc7, 0x55, 0xff}), image.Point{}, draw.Src)
		switch format {
		case "png":
			err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
		case "raw png":
			err = (&png.Encoder{CompressionLevel: png.NoCompression}).Encode(&buf, img)
		default:
			err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func sdkMenu(name string, w, h int64, actions ...messaging_api.ActionInterface) *messaging_api.RichMenuRequest {
	m := &messaging_api.RichMenuRequest{Size: &messaging_api.RichMenuSize{Width: w, Height: h}, Name: name, ChatBarText: "選單 Menu"}
	for i, a := range actions {
		m.Areas = append(m.Areas, messaging_api.RichMenuArea{
			Bounds: &messaging_api.RichMenuBounds{X: int64(i) * w / int64(len(actions)), Y: 0, Width: w / int64(len(actions)), Height: h},
			Action: a,
		})
	}
	return m
}

// MustMenu creates a rich menu with an image through the SDK and returns its ID.
func MustMenu(tb testing.TB, api *messaging_api.MessagingApiAPI, blob *messaging_api.MessagingApiBlobAPI, req *messaging_api.RichMenuRequest) string {
	tb.Helper()
	res, err := api.CreateRichMenu(req)
	if err != nil {
		tb.Fatal(err)
	}
	img := menuImage(tb, "png", int(req.Size.Width), int(req.Size.Height))
	if _, err := blob.SetRichMenuImage(res.RichMenuId, "image/png", bytes.NewReader(img)); err != nil {
		tb.Fatal(err)
	}
	return res.RichMenuId
}

func TestRichMenuLifecycle(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	api, blob := MustClient(t, s, url)
	bot := MustBot(t, s)
	user := MustFriend(t, s)

	unlinked := sdkMenu("unlinked-v1", 2500, 843,
		messaging_api.PostbackAction{Label: "綁定", Data: "action=link", DisplayText: "綁定臺北通"},
		messaging_api.RichMenuSwitchAction{Label: "更多", RichMenuAliasId: "linked", Data: "tab=linked"})
	if _, err := api.ValidateRichMenuObject(unlinked); err != nil {
		t.Fatalf("validate: %v", err)
	}
	created, err := api.CreateRichMenu(unlinked)
	if err != nil {
		t.Fatal(err)
	}
	id := created.RichMenuId
	if !strings.HasPrefix(id, "richmenu-") {
		t.Errorf("rich menu ID %q", id)
	}
	got, err := api.GetRichMenu(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "unlinked-v1" || got.ChatBarText != "選單 Menu" || len(got.Areas) != 2 || got.Size.Width != 2500 {
		t.Errorf("get = %+v", got)
	}
	if a, ok := got.Areas[1].Action.(messaging_api.RichMenuSwitchAction); !ok || a.RichMenuAliasId != "linked" {
		t.Errorf("area 1 action = %#v", got.Areas[1].Action)
	}

	// Linking before the image is refused.
	if res, _, _ := api.SetDefaultRichMenuWithHttpInfo(id); res.StatusCode != http.StatusBadRequest {
		t.Errorf("default without image: %d, want 400", res.StatusCode)
	}
	img := menuImage(t, "png", 2500, 843)
	if _, err := blob.SetRichMenuImage(id, "image/png", bytes.NewReader(img)); err != nil {
		t.Fatal(err)
	}
	if res, _, _ := blob.SetRichMenuImageWithHttpInfo(id, "image/png", bytes.NewReader(img)); res.StatusCode != http.StatusBadRequest {
		t.Errorf("re-upload: %d, want 400", res.StatusCode)
	}
	res, err := blob.GetRichMenuImage(id)
	if err != nil {
		t.Fatal(err)
	}
	downloaded, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Equal(downloaded, img) || res.Header.Get("Content-Type") != "image/png" {
		t.Errorf("downloaded %d bytes of %s, want the %d uploaded", len(downloaded), res.Header.Get("Content-Type"), len(img))
	}

	if _, err := api.SetDefaultRichMenu(id); err != nil {
		t.Fatal(err)
	}
	if d, err := api.GetDefaultRichMenuId(); err != nil || d.RichMenuId != id {
		t.Errorf("default = %+v, %v", d, err)
	}
	if got := s.EffectiveRichMenuID(user); got != id {
		t.Errorf("effective menu %q, want the default %q", got, id)
	}

	linked := MustMenu(t, api, blob, sdkMenu("linked-v1", 1200, 405, messaging_api.UriAction{Label: "設定", Uri: "https://bot.example/settings"}))
	if _, err := api.CreateRichMenuAlias(&messaging_api.CreateRichMenuAliasRequest{RichMenuAliasId: "linked", RichMenuId: linked}); err != nil {
		t.Fatal(err)
	}
	if a, err := api.GetRichMenuAlias("linked"); err != nil || a.RichMenuId != linked {
		t.Errorf("alias = %+v, %v", a, err)
	}

	// A richmenuswitch tap makes the alias's menu the user's own, and sends a postback.
	d, err := s.Tap(ctxT(t), user, s.mustMenu(t, id).Areas[1].Action, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"newRichMenuAliasId": "linked", "status": "SUCCESS"}, d.Events[0].Postback.Params); diff != "" {
		t.Errorf("switch params (-want +got):\n%s", diff)
	}
	reqs := bot.Requests()
	if pb, ok := reqs[len(reqs)-1].Parsed.Events[0].(webhook.PostbackEvent); !ok || pb.Postback.Data != "tab=linked" {
		t.Errorf("switch postback = %#v", reqs[len(reqs)-1].Parsed.Events[0])
	}
	if got, err := api.GetRichMenuIdOfUser(user); err != nil || got.RichMenuId != linked {
		t.Errorf("user menu = %+v, %v; want %s", got, err, linked)
	}
	// Per-user beats default: changing the default does not reach the user.
	if _, err := api.CancelDefaultRichMenu(); err != nil {
		t.Fatal(err)
	}
	if got := s.EffectiveRichMenuID(user); got != linked {
		t.Errorf("effective menu %q, want per-user %q", got, linked)
	}
	if _, err := api.UnlinkRichMenuIdFromUser(user); err != nil {
		t.Fatal(err)
	}
	if res, _, _ := api.GetRichMenuIdOfUserWithHttpInfo(user); res.StatusCode != http.StatusNotFound {
		t.Errorf("user menu after unlink: %d, want 404", res.StatusCode)
	}

	// Bulk link answers 202 and applies to friends only.
	stranger, _ := s.AddUser(User{})
	res202, _, err := api.LinkRichMenuIdToUsersWithHttpInfo(&messaging_api.RichMenuBulkLinkRequest{RichMenuId: linked, UserIds: []string{user, stranger.ID}})
	if err != nil || res202.StatusCode != http.StatusAccepted {
		t.Fatalf("bulk link: %v %v", res202, err)
	}
	if s.UserRichMenuID(user) != linked || s.UserRichMenuID(stranger.ID) != "" {
		t.Errorf("bulk link: user %q stranger %q", s.UserRichMenuID(user), s.UserRichMenuID(stranger.ID))
	}
	if res, _, err := api.UnlinkRichMenuIdFromUsersWithHttpInfo(&messaging_api.RichMenuBulkUnlinkRequest{UserIds: []string{user}}); err != nil || res.StatusCode != http.StatusAccepted || s.UserRichMenuID(user) != "" {
		t.Errorf("bulk unlink: %v %v", res, err)
	}

	if _, err := api.UpdateRichMenuAlias("linked", &messaging_api.UpdateRichMenuAliasRequest{RichMenuId: id}); err != nil {
		t.Fatal(err)
	}
	list, err := api.GetRichMenuAliasList()
	if err != nil || len(list.Aliases) != 1 || list.Aliases[0].RichMenuId != id {
		t.Errorf("aliases = %+v, %v", list, err)
	}
	if _, err := api.DeleteRichMenuAlias("linked"); err != nil {
		t.Fatal(err)
	}
	if _, err := api.DeleteRichMenu(linked); err != nil {
		t.Fatal(err)
	}
	menus, err := api.GetRichMenuList()
	if err != nil || len(menus.Richmenus) != 1 || menus.Richmenus[0].RichMenuId != id {
		t.Errorf("menus after delete = %+v, %v", menus, err)
	}
	if res, _, _ := api.GetRichMenuWithHttpInfo(linked); res.StatusCode != http.StatusNotFound {
		t.Errorf("deleted menu: %d, want 404", res.StatusCode)
	}
}

func (s *Server) mustMenu(tb testing.TB, id string) RichMenu {
	tb.Helper()
	m, ok := s.RichMenu(id)
	if !ok {
		tb.Fatalf("no rich menu %s", id)
	}
	return m
}

func TestRichMenuSwitchFailures(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	api, blob := MustClient(t, s, url)
	MustBot(t, s)
	user := MustFriend(t, s)
	gone := MustMenu(t, api, blob, sdkMenu("gone", 800, 270, messaging_api.PostbackAction{Data: "x"}))
	if _, err := api.CreateRichMenuAlias(&messaging_api.CreateRichMenuAliasRequest{RichMenuAliasId: "gone", RichMenuId: gone}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.DeleteRichMenu(gone); err != nil {
		t.Fatal(err)
	}
	for alias, want := range map[string]string{"nosuch": "RICHMENU_ALIAS_ID_NOTFOUND", "gone": "RICHMENU_NOTFOUND"} {
		d, err := s.RichMenuSwitch(ctxT(t), user, alias, "d")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]string{"status": want}, d.Events[0].Postback.Params); diff != "" {
			t.Errorf("%s (-want +got):\n%s", alias, diff)
		}
	}
	if got := s.UserRichMenuID(user); got != "" {
		t.Errorf("failed switches changed the menu to %q", got)
	}
}

func TestRichMenuValidation(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	menu := func(size, areas string) string {
		return `{"size":` + size + `,"selected":false,"name":"n","chatBarText":"選單","areas":` + areas + `}`
	}
	area := func(x, y, w, h int, action string) string {
		return `{"bounds":{"x":` + strconv.Itoa(x) + `,"y":` + strconv.Itoa(y) + `,"width":` + strconv.Itoa(w) + `,"height":` + strconv.Itoa(h) + `},"action":` + action + `}`
	}
	pb := `{"type":"postback","data":"d"}`
	tests := []struct {
		name     string
		body     string
		wantProp string
	}{
		{"ok", menu(`{"width":2500,"height":1686}`, `[`+area(0, 0, 2500, 1686, pb)+`]`), ""},
		{"no areas", `{"size":{"width":800,"height":270},"selected":false,"name":"n","chatBarText":"c"}`, "areas"},
		{"too narrow", menu(`{"width":799,"height":250}`, `[]`), "size"},
		{"too wide", menu(`{"width":2501,"height":1000}`, `[]`), "size"},
		{"too low", menu(`{"width":800,"height":249}`, `[]`), "size"},
		{"too square", menu(`{"width":1200,"height":828}`, `[]`), "size"},
		{"name too long", `{"size":{"width":800,"height":270},"selected":true,"name":"` + strings.Repeat("n", 301) + `","chatBarText":"c","areas":[]}`, "name"},
		{"chat bar too long", `{"size":{"width":800,"height":270},"selected":true,"name":"n","chatBarText":"` + strings.Repeat("字", 15) + `","areas":[]}`, "chatBarText"},
		{"no selected", `{"size":{"width":800,"height":270},"name":"n","chatBarText":"c","areas":[]}`, "selected"},
		{"21 areas", menu(`{"width":2100,"height":270}`, `[`+strings.TrimSuffix(strings.Repeat(area(0, 0, 100, 100, pb)+",", 21), ",")+`]`), "areas"},
		{"area outside", menu(`{"width":800,"height":270}`, `[`+area(700, 0, 101, 270, pb)+`]`), "areas[0].bounds"},
		{"negative x", menu(`{"width":800,"height":270}`, `[`+area(-1, 0, 100, 270, pb)+`]`), "areas[0].bounds.x"},
		{"bad action", menu(`{"width":800,"height":270}`, `[`+area(0, 0, 100, 270, `{"type":"teleport"}`)+`]`), "areas[0].action.type"},
		{"switch data too long", menu(`{"width":800,"height":270}`, `[`+area(0, 0, 100, 270, `{"type":"richmenuswitch","richMenuAliasId":"a","data":"`+strings.Repeat("d", 301)+`"}`)+`]`), "areas[0].action.data"},
		{"switch without alias", menu(`{"width":800,"height":270}`, `[`+area(0, 0, 100, 270, `{"type":"richmenuswitch","data":"d"}`)+`]`), "areas[0].action.richMenuAliasId"},
		{"uri without uri", menu(`{"width":800,"height":270}`, `[`+area(0, 0, 100, 270, `{"type":"uri","label":"l"}`)+`]`), "areas[0].action.uri"},
		{"label too long", menu(`{"width":800,"height":270}`, `[`+area(0, 0, 100, 270, `{"type":"message","label":"`+strings.Repeat("l", 21)+`","text":"t"}`)+`]`), "areas[0].action.label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/v2/bot/richmenu/validate", "/v2/bot/richmenu"} {
				status, _, body := do(t, s, url, "POST", path, []byte(tt.body), nil)
				if tt.wantProp == "" {
					if status != http.StatusOK {
						t.Errorf("%s: %d %s, want 200", path, status, body)
					}
					continue
				}
				e := errorMessage(t, body)
				if status != http.StatusBadRequest || len(e.Details) == 0 || e.Details[0].Property != tt.wantProp {
					t.Errorf("%s: %d %s, want 400 on %s", path, status, body, tt.wantProp)
				}
			}
		})
	}
}

func TestRichMenuImageRules(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	api, blob := MustClient(t, s, url)
	tests := []struct {
		name        string
		contentType string
		image       []byte
		want        int
	}{
		{"png", "image/png", menuImage(t, "png", 800, 540), 200},
		{"jpeg", "image/jpeg", menuImage(t, "jpeg", 800, 540), 200},
		{"jpeg with charset", "image/jpeg; charset=binary", menuImage(t, "jpeg", 800, 540), 200},
		{"gif", "image/gif", menuImage(t, "gif", 800, 540), 415},
		{"no content type", "", menuImage(t, "png", 800, 540), 415},
		{"png sent as jpeg", "image/jpeg", menuImage(t, "png", 800, 540), 400},
		{"not an image", "image/png", []byte("not a png"), 400},
		{"other size than the menu", "image/png", menuImage(t, "png", 800, 270), 400},
		{"over 1 MB", "image/png", menuImage(t, "raw png", 800, 540), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := api.CreateRichMenu(sdkMenu(tt.name, 800, 540, messaging_api.PostbackAction{Data: "x"}))
			if err != nil {
				t.Fatal(err)
			}
			res, _, _ := blob.SetRichMenuImageWithHttpInfo(m.RichMenuId, tt.contentType, bytes.NewReader(tt.image))
			if res.StatusCode != tt.want {
				b, _ := io.ReadAll(res.Body)
				t.Errorf("status %d (%s), want %d", res.StatusCode, b, tt.want)
			}
			if got := s.mustMenu(t, m.RichMenuId).HasImage; got != (tt.want == 200) {
				t.Errorf("HasImage = %v", got)
			}
		})
	}
}

func TestRichMenuLinkRules(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	api, blob := MustClient(t, s, url)
	MustBot(t, s)
	friend := MustFriend(t, s)
	stranger, _ := s.AddUser(User{})
	blocked := MustFriend(t, s)
	if _, err := s.Unfollow(ctxT(t), blocked); err != nil {
		t.Fatal(err)
	}
	bare, err := api.CreateRichMenu(sdkMenu("bare", 800, 270, messaging_api.PostbackAction{Data: "x"}))
	if err != nil {
		t.Fatal(err)
	}
	ready := MustMenu(t, api, blob, sdkMenu("ready", 800, 270, messaging_api.PostbackAction{Data: "x"}))

	tests := []struct {
		name   string
		method string
		path   string
		body   string
		want   int
	}{
		{"link menu without image", "POST", "/v2/bot/user/" + friend + "/richmenu/" + bare.RichMenuId, "", 400},
		{"alias menu without image", "POST", "/v2/bot/richmenu/alias", `{"richMenuAliasId":"bare","richMenuId":"` + bare.RichMenuId + `"}`, 400},
		{"bulk link menu without image", "POST", "/v2/bot/richmenu/bulk/link", `{"richMenuId":"` + bare.RichMenuId + `","userIds":["` + friend + `"]}`, 400},
		{"link unknown menu", "POST", "/v2/bot/user/" + friend + "/richmenu/richmenu-00000000000000000000000000000000", "", 404},
		{"link malformed user", "POST", "/v2/bot/user/Uxyz/richmenu/" + ready, "", 400},
		{"link non-friend", "POST", "/v2/bot/user/" + stranger.ID + "/richmenu/" + ready, "", 200},
		{"link blocked", "POST", "/v2/bot/user/" + blocked + "/richmenu/" + ready, "", 200},
		{"bulk link 501 users", "POST", "/v2/bot/richmenu/bulk/link", `{"richMenuId":"` + ready + `","userIds":["` + strings.TrimSuffix(strings.Repeat(friend+`","`, 501), `","`) + `"]}`, 400},
		{"alias with capitals", "POST", "/v2/bot/richmenu/alias", `{"richMenuAliasId":"Linked","richMenuId":"` + ready + `"}`, 400},
		{"alias of 33 chars", "POST", "/v2/bot/richmenu/alias", `{"richMenuAliasId":"` + strings.Repeat("a", 33) + `","richMenuId":"` + ready + `"}`, 400},
		{"alias ok", "POST", "/v2/bot/richmenu/alias", `{"richMenuAliasId":"tab-1_a","richMenuId":"` + ready + `"}`, 200},
		{"alias taken", "POST", "/v2/bot/richmenu/alias", `{"richMenuAliasId":"tab-1_a","richMenuId":"` + ready + `"}`, 400},
		{"delete unknown alias", "DELETE", "/v2/bot/richmenu/alias/nope", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := do(t, s, url, tt.method, tt.path, []byte(tt.body), nil)
			if status != tt.want {
				t.Errorf("status %d (%s), want %d", status, body, tt.want)
			}
		})
	}
	for _, id := range []string{stranger.ID, blocked} {
		if got := s.UserRichMenuID(id); got != "" {
			t.Errorf("%s got menu %q; links to non-friends must have no effect", id, got)
		}
	}
}

func TestRichMenuCreateLimitPerHour(t *testing.T) {
	s, url, clock := MustStart(t, Options{})
	body := []byte(`{"size":{"width":800,"height":270},"selected":false,"name":"n","chatBarText":"c","areas":[]}`)
	for i := range 100 {
		if status, _, b := do(t, s, url, "POST", "/v2/bot/richmenu", body, nil); status != http.StatusOK {
			t.Fatalf("create %d: %d %s", i, status, b)
		}
	}
	status, _, b := do(t, s, url, "POST", "/v2/bot/richmenu", body, nil)
	if status != http.StatusTooManyRequests || errorMessage(t, b).Message != MessageRateLimit {
		t.Fatalf("101st create: %d %s, want 429", status, b)
	}
	clock.Advance(36 * time.Second) // 36 s refills one of 100 per hour
	if status, _, _ := do(t, s, url, "POST", "/v2/bot/richmenu", body, nil); status != http.StatusOK {
		t.Errorf("after 36 s: %d, want 200", status)
	}
}
