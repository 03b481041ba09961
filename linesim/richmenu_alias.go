package linesim

import (
	"net/http"
	"slices"
)

type aliasRequest struct {
	RichMenuAliasID string `json:"richMenuAliasId"`
	RichMenuID      string `json:"richMenuId"`
}

func aliasResponse(alias, menu string) map[string]string {
	return map[string]string{"richMenuAliasId": alias, "richMenuId": menu}
}

func (s *Server) handleCreateAlias(c *call) {
	var req aliasRequest
	if !c.decode(&req) {
		return
	}
	if !aliasIDPattern.MatchString(req.RichMenuAliasID) {
		c.invalid([]errorDetail{{Message: "must match ^[a-z0-9_-]{1,32}$", Property: "richMenuAliasId"}})
		return
	}
	s.mu.Lock()
	_, fail := s.usableMenuLocked(req.RichMenuID)
	switch {
	case fail != nil:
		if fail.status == http.StatusNotFound { // LINE answers 400 for a bad menu in a body
			fail = &apiError{http.StatusBadRequest, "richmenu not found"}
		}
	case s.aliases[req.RichMenuAliasID] != "":
		fail = &apiError{http.StatusBadRequest, "conflict richmenu alias id"}
	case len(s.aliases) >= maxAliases:
		fail = &apiError{http.StatusBadRequest, "The maximum number of rich menu aliases has been reached"}
	default:
		s.aliases[req.RichMenuAliasID] = req.RichMenuID
		s.aliasOrder = append(s.aliasOrder, req.RichMenuAliasID)
	}
	s.mu.Unlock()
	c.answer(fail, http.StatusOK, struct{}{})
}

func (s *Server) handleUpdateAlias(c *call) {
	var req aliasRequest
	if !c.decode(&req) {
		return
	}
	alias := c.r.PathValue("richMenuAliasId")
	s.mu.Lock()
	_, fail := s.usableMenuLocked(req.RichMenuID)
	switch {
	case s.aliases[alias] == "":
		fail = &apiError{http.StatusNotFound, "richmenu alias not found"}
	case fail != nil:
		if fail.status == http.StatusNotFound {
			fail = &apiError{http.StatusBadRequest, "richmenu not found"}
		}
	default:
		s.aliases[alias] = req.RichMenuID
	}
	s.mu.Unlock()
	c.answer(fail, http.StatusOK, struct{}{})
}

func (s *Server) handleDeleteAlias(c *call) {
	alias := c.r.PathValue("richMenuAliasId")
	s.mu.Lock()
	_, ok := s.aliases[alias]
	if ok {
		delete(s.aliases, alias)
		s.aliasOrder = slices.DeleteFunc(s.aliasOrder, func(a string) bool { return a == alias })
	}
	s.mu.Unlock()
	if !ok {
		c.fail(http.StatusNotFound, "richmenu alias not found")
		return
	}
	c.json(http.StatusOK, struct{}{})
}

func (s *Server) handleGetAlias(c *call) {
	alias := c.r.PathValue("richMenuAliasId")
	s.mu.Lock()
	menu := s.aliases[alias]
	s.mu.Unlock()
	if menu == "" {
		c.fail(http.StatusNotFound, "richmenu alias not found")
		return
	}
	c.json(http.StatusOK, aliasResponse(alias, menu))
}

func (s *Server) handleListAliases(c *call) {
	s.mu.Lock()
	list := make([]map[string]string, 0, len(s.aliasOrder))
	for _, a := range s.aliasOrder {
		list = append(list, aliasResponse(a, s.aliases[a]))
	}
	s.mu.Unlock()
	c.json(http.StatusOK, map[string]any{"aliases": list})
}
