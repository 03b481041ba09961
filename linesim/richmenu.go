package linesim

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
)

// RichMenu is a rich menu as stored by the emulator.
type RichMenu struct {
	ID          string `json:"richMenuId"`
	Width       int64  `json:"width"`
	Height      int64  `json:"height"`
	Selected    bool   `json:"selected"`
	Name        string `json:"name"`
	ChatBarText string `json:"chatBarText"`
	Areas       []Area `json:"areas"`
	HasImage    bool   `json:"hasImage"`
}

// Area is a tappable rectangle of a rich menu, in image pixels.
type Area struct {
	X      int64  `json:"x"`
	Y      int64  `json:"y"`
	Width  int64  `json:"width"`
	Height int64  `json:"height"`
	Action Action `json:"action"`
}

// richMenuObject is LINE's rich menu object; actions keep the bot's exact JSON.
type richMenuObject struct {
	Size struct {
		Width  int64 `json:"width"`
		Height int64 `json:"height"`
	} `json:"size"`
	Selected    bool   `json:"selected"`
	Name        string `json:"name"`
	ChatBarText string `json:"chatBarText"`
	Areas       []struct {
		Bounds struct {
			X      int64 `json:"x"`
			Y      int64 `json:"y"`
			Width  int64 `json:"width"`
			Height int64 `json:"height"`
		} `json:"bounds"`
		Action json.RawMessage `json:"action"`
	} `json:"areas"`
}

type richMenu struct {
	id        string
	obj       richMenuObject
	image     []byte
	imageType string
}

func (m *richMenu) response() map[string]any {
	return map[string]any{
		"richMenuId": m.id, "size": m.obj.Size, "selected": m.obj.Selected,
		"name": m.obj.Name, "chatBarText": m.obj.ChatBarText, "areas": m.obj.Areas,
	}
}

func (m *richMenu) view() RichMenu {
	v := RichMenu{
		ID: m.id, Width: m.obj.Size.Width, Height: m.obj.Size.Height, Selected: m.obj.Selected,
		Name: m.obj.Name, ChatBarText: m.obj.ChatBarText, HasImage: m.image != nil, Areas: []Area{},
	}
	for _, a := range m.obj.Areas {
		var act Action
		_ = json.Unmarshal(a.Action, &act)
		v.Areas = append(v.Areas, Area{X: a.Bounds.X, Y: a.Bounds.Y, Width: a.Bounds.Width, Height: a.Bounds.Height, Action: act})
	}
	return v
}

// parseRichMenu validates the body as a rich menu object, answering 400 with details if not.
func (c *call) parseRichMenu() (richMenuObject, bool) {
	var obj richMenuObject
	body, ok := c.decodeObject()
	if !ok {
		return obj, false
	}
	var ck checker
	ck.richMenu(body)
	if len(ck.details) > 0 {
		c.invalid(ck.details)
		return obj, false
	}
	return obj, c.decode(&obj)
}

func (s *Server) handleCreateRichMenu(c *call) {
	obj, ok := c.parseRichMenu()
	if !ok {
		return
	}
	s.mu.Lock()
	if len(s.menus) >= maxRichMenus {
		s.mu.Unlock()
		c.fail(http.StatusBadRequest, "The maximum number of rich menus has been reached")
		return
	}
	m := &richMenu{id: newRichMenuID(), obj: obj}
	s.menus[m.id] = m
	s.menuOrder = append(s.menuOrder, m.id)
	s.mu.Unlock()
	c.json(http.StatusOK, map[string]string{"richMenuId": m.id})
}

func (s *Server) handleValidateRichMenu(c *call) {
	if _, ok := c.parseRichMenu(); ok {
		c.json(http.StatusOK, struct{}{})
	}
}

func (s *Server) handleListRichMenus(c *call) {
	s.mu.Lock()
	list := make([]map[string]any, 0, len(s.menuOrder))
	for _, id := range s.menuOrder {
		list = append(list, s.menus[id].response())
	}
	s.mu.Unlock()
	c.json(http.StatusOK, map[string]any{"richmenus": list})
}

// menuForLocked returns the rich menu named in the path, or nil. The caller holds s.mu.
func (s *Server) menuForLocked(c *call) *richMenu {
	return s.menus[c.r.PathValue("richMenuId")]
}

func (s *Server) handleGetRichMenu(c *call) {
	s.mu.Lock()
	m := s.menuForLocked(c)
	var resp map[string]any
	if m != nil {
		resp = m.response()
	}
	s.mu.Unlock()
	if m == nil {
		c.fail(http.StatusNotFound, "Not found")
		return
	}
	c.json(http.StatusOK, resp)
}

// handleDeleteRichMenu deletes a menu, unlinking it from users and from the default. Aliases
// pointing at it stay, dangling: a switch to them then reports RICHMENU_NOTFOUND, as on LINE.
func (s *Server) handleDeleteRichMenu(c *call) {
	s.mu.Lock()
	m := s.menuForLocked(c)
	if m == nil {
		s.mu.Unlock()
		c.fail(http.StatusNotFound, "Not found")
		return
	}
	delete(s.menus, m.id)
	s.menuOrder = slices.DeleteFunc(s.menuOrder, func(id string) bool { return id == m.id })
	if s.defaultMenu == m.id {
		s.defaultMenu = ""
	}
	for _, u := range s.users {
		if u.richMenu == m.id {
			u.richMenu = ""
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	c.json(http.StatusOK, struct{}{})
}

func (s *Server) handleUploadRichMenuImage(c *call) {
	ct := c.r.Header.Get("Content-Type")
	s.mu.Lock()
	m := s.menuForLocked(c)
	var fail *apiError
	switch {
	case m == nil:
		fail = &apiError{http.StatusNotFound, "Not found"}
	case m.image != nil:
		// No re-upload on LINE: a new image means a new rich menu.
		fail = &apiError{http.StatusBadRequest, "An image has already been uploaded to the richmenu"}
	default:
		if status, msg := checkRichMenuImage(ct, c.body, m.obj.Size.Width, m.obj.Size.Height); status != 0 {
			fail = &apiError{status, msg}
		} else {
			m.image, m.imageType = c.body, ct
			s.notifyLocked()
		}
	}
	s.mu.Unlock()
	c.answer(fail, http.StatusOK, struct{}{})
}

func (s *Server) handleDownloadRichMenuImage(c *call) {
	data, ct, ok := s.RichMenuImage(c.r.PathValue("richMenuId"))
	if !ok {
		c.fail(http.StatusNotFound, "Not found")
		return
	}
	c.write(http.StatusOK, ct, data)
}

// usableMenuLocked returns the menu, or a 404 for a missing menu and a 400 for one without an
// image, which LINE refuses to show, link or alias. The caller holds s.mu.
func (s *Server) usableMenuLocked(id string) (*richMenu, *apiError) {
	m := s.menus[id]
	if m == nil {
		return nil, &apiError{http.StatusNotFound, "Not found"}
	}
	if m.image == nil {
		return nil, &apiError{http.StatusBadRequest, "must upload richmenu image before applying it to user"}
	}
	return m, nil
}

func (s *Server) handleSetDefaultRichMenu(c *call) {
	s.mu.Lock()
	m, fail := s.usableMenuLocked(c.r.PathValue("richMenuId"))
	if fail == nil {
		s.defaultMenu = m.id
		s.notifyLocked()
	}
	s.mu.Unlock()
	c.answer(fail, http.StatusOK, struct{}{})
}

func (s *Server) handleGetDefaultRichMenu(c *call) {
	id := s.DefaultRichMenuID()
	if id == "" {
		c.fail(http.StatusNotFound, "no default richmenu")
		return
	}
	c.json(http.StatusOK, map[string]string{"richMenuId": id})
}

func (s *Server) handleCancelDefaultRichMenu(c *call) {
	s.mu.Lock()
	s.defaultMenu = ""
	s.notifyLocked()
	s.mu.Unlock()
	c.json(http.StatusOK, struct{}{})
}

// linkLocked sets a user's per-user menu. Unknown users, users who are not friends and users
// who blocked the bot are skipped: LINE answers 200 and nothing changes.
func (s *Server) linkLocked(userID, menuID string) {
	if u := s.users[userID]; u != nil && u.Friend {
		u.richMenu = menuID
	}
	s.notifyLocked()
}

func (s *Server) handleLinkUserRichMenu(c *call) {
	userID := c.r.PathValue("userId")
	if !ValidUserID(userID) {
		c.fail(http.StatusBadRequest, "The value for the 'userId' parameter is invalid")
		return
	}
	s.mu.Lock()
	m, fail := s.usableMenuLocked(c.r.PathValue("richMenuId"))
	if fail == nil {
		s.linkLocked(userID, m.id)
	}
	s.mu.Unlock()
	c.answer(fail, http.StatusOK, struct{}{})
}

func (s *Server) handleGetUserRichMenu(c *call) {
	userID := c.r.PathValue("userId")
	if !ValidUserID(userID) {
		c.fail(http.StatusBadRequest, "The value for the 'userId' parameter is invalid")
		return
	}
	id := s.UserRichMenuID(userID)
	if id == "" {
		c.fail(http.StatusNotFound, "the user has no richmenu")
		return
	}
	c.json(http.StatusOK, map[string]string{"richMenuId": id})
}

func (s *Server) handleUnlinkUserRichMenu(c *call) {
	userID := c.r.PathValue("userId")
	if !ValidUserID(userID) {
		c.fail(http.StatusBadRequest, "The value for the 'userId' parameter is invalid")
		return
	}
	s.mu.Lock()
	s.linkLocked(userID, "")
	s.mu.Unlock()
	c.json(http.StatusOK, struct{}{})
}

// bulkUsers validates "userIds": 1–500 well-formed user IDs.
func (ck *checker) bulkUsers(body map[string]any) []string {
	var ids []string
	for i, v := range ck.arr(body, "", "userIds", 1, 500) {
		id, _ := v.(string)
		if !ValidUserID(id) {
			ck.add(idx("userIds", i), "Invalid user ID")
		}
		ids = append(ids, id)
	}
	return ids
}

// handleBulkLink links a menu to up to 500 users. LINE does this asynchronously and answers
// 202; the emulator applies it at once, which a caller cannot tell apart.
func (s *Server) handleBulkLink(c *call) {
	body, ok := c.decodeObject()
	if !ok {
		return
	}
	var ck checker
	menuID := ck.str(body, "", "richMenuId", true, 1, 0)
	ids := ck.bulkUsers(body)
	if len(ck.details) > 0 {
		c.invalid(ck.details)
		return
	}
	s.mu.Lock()
	m, fail := s.usableMenuLocked(menuID)
	if fail == nil {
		for _, id := range ids {
			s.linkLocked(id, m.id)
		}
	}
	s.mu.Unlock()
	c.answer(fail, http.StatusAccepted, struct{}{})
}

func (s *Server) handleBulkUnlink(c *call) {
	body, ok := c.decodeObject()
	if !ok {
		return
	}
	var ck checker
	ids := ck.bulkUsers(body)
	if len(ck.details) > 0 {
		c.invalid(ck.details)
		return
	}
	s.mu.Lock()
	for _, id := range ids {
		s.linkLocked(id, "")
	}
	s.mu.Unlock()
	c.json(http.StatusAccepted, struct{}{})
}

// RichMenus returns every rich menu in the order created.
func (s *Server) RichMenus() []RichMenu {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RichMenu, 0, len(s.menuOrder))
	for _, id := range s.menuOrder {
		out = append(out, s.menus[id].view())
	}
	return out
}

// RichMenu returns one rich menu; false when it does not exist.
func (s *Server) RichMenu(id string) (RichMenu, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.menus[id]
	if m == nil {
		return RichMenu{}, false
	}
	return m.view(), true
}

// RichMenuImage returns a menu's uploaded image and its content type; false when there is none.
func (s *Server) RichMenuImage(id string) ([]byte, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.menus[id]
	if m == nil || m.image == nil {
		return nil, "", false
	}
	return slices.Clone(m.image), m.imageType, true
}

// DefaultRichMenuID returns the default rich menu set through the API, or "".
func (s *Server) DefaultRichMenuID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.defaultMenu
}

// UserRichMenuID returns the menu linked to the user alone (API link or richmenuswitch), or "".
func (s *Server) UserRichMenuID(userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[userID]; u != nil {
		return u.richMenu
	}
	return ""
}

// EffectiveRichMenuID returns the menu the user's phone shows: the per-user menu, else the
// default, else "". Users who are not friends see none.
func (s *Server) EffectiveRichMenuID(userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.effectiveMenuLocked(userID)
}

func (s *Server) effectiveMenuLocked(userID string) string {
	u := s.users[userID]
	if u == nil || !u.Friend {
		return ""
	}
	if u.richMenu != "" {
		return u.richMenu
	}
	return s.defaultMenu
}

// Aliases returns a copy of the rich-menu aliases, alias ID → rich menu ID.
func (s *Server) Aliases() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.aliases)
}
