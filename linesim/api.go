package linesim

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Routes whose rate limits differ from the 2,000/s default, as keys for Options.RateLimits.
// Any other route is keyed the same way: method, a space, and the path pattern.
const (
	RoutePush           = "POST /v2/bot/message/push"
	RouteMulticast      = "POST /v2/bot/message/multicast"
	RouteBroadcast      = "POST /v2/bot/message/broadcast"
	RouteReply          = "POST /v2/bot/message/reply"
	RouteRichMenuCreate = "POST /v2/bot/richmenu"
	RouteRichMenuDelete = "DELETE /v2/bot/richmenu/{richMenuId}"
	RouteRichMenuList   = "GET /v2/bot/richmenu/list"
	RouteAliasDelete    = "DELETE /v2/bot/richmenu/alias/{richMenuAliasId}"
)

// LINE's error texts that callers tell apart.
const (
	// MessageRateLimit is the 429 body message of a rate-limit rejection: back off and retry.
	MessageRateLimit = "The API rate limit has been exceeded. Try again later."
	// MessageMonthlyLimit is the 429 body message when the monthly quota is used up.
	MessageMonthlyLimit = "You have reached your monthly limit."
	// MessageRetryKeyAccepted is the 409 body message for a repeated X-Line-Retry-Key.
	MessageRetryKeyAccepted = "The retry key is already accepted"
	// MessageInvalidReplyToken is the 400 body message for a used, expired or unknown reply token.
	MessageInvalidReplyToken = "Invalid reply token"
)

const (
	maxBodyBytes   = 2 << 20 // LINE's 2 MB request limit
	retryKeyMemory = 24 * time.Hour
)

type route struct {
	pattern  string // "METHOD /path/{param}", also the rate-limit key
	method   string
	segs     []string
	retryKey bool // accepts X-Line-Retry-Key
	h        func(*call)
}

func newRoute(pattern string, retryKey bool, h func(*call)) *route {
	method, path, _ := strings.Cut(pattern, " ")
	return &route{pattern: pattern, method: method, segs: strings.Split(strings.Trim(path, "/"), "/"), retryKey: retryKey, h: h}
}

func (s *Server) apiRoutes() []*route {
	return []*route{
		newRoute(RouteReply, false, s.handleReply),
		newRoute(RoutePush, true, s.handlePush),
		newRoute(RouteMulticast, true, s.handleMulticast),
		newRoute(RouteBroadcast, true, s.handleBroadcast),
		newRoute("POST /v2/bot/message/validate/{kind}", false, s.handleValidateMessages),
		newRoute("GET /v2/bot/message/quota", false, s.handleQuota),
		newRoute("GET /v2/bot/message/quota/consumption", false, s.handleConsumption),
		newRoute("GET /v2/bot/info", false, s.handleBotInfo),
		newRoute("GET /v2/bot/profile/{userId}", false, s.handleProfile),
		newRoute("POST /v2/bot/user/{userId}/linkToken", false, s.handleLinkToken),
		newRoute("GET /v2/bot/channel/webhook/endpoint", false, s.handleGetWebhookEndpoint),
		newRoute("PUT /v2/bot/channel/webhook/endpoint", false, s.handleSetWebhookEndpoint),
		newRoute("POST /v2/bot/channel/webhook/test", false, s.handleTestWebhook),

		newRoute(RouteRichMenuCreate, false, s.handleCreateRichMenu),
		newRoute("POST /v2/bot/richmenu/validate", false, s.handleValidateRichMenu),
		newRoute(RouteRichMenuList, false, s.handleListRichMenus),
		newRoute("GET /v2/bot/richmenu/{richMenuId}", false, s.handleGetRichMenu),
		newRoute(RouteRichMenuDelete, false, s.handleDeleteRichMenu),
		newRoute("POST /v2/bot/richmenu/{richMenuId}/content", false, s.handleUploadRichMenuImage),
		newRoute("GET /v2/bot/richmenu/{richMenuId}/content", false, s.handleDownloadRichMenuImage),
		newRoute("POST /v2/bot/user/all/richmenu/{richMenuId}", false, s.handleSetDefaultRichMenu),
		newRoute("GET /v2/bot/user/all/richmenu", false, s.handleGetDefaultRichMenu),
		newRoute("DELETE /v2/bot/user/all/richmenu", false, s.handleCancelDefaultRichMenu),
		newRoute("POST /v2/bot/user/{userId}/richmenu/{richMenuId}", false, s.handleLinkUserRichMenu),
		newRoute("GET /v2/bot/user/{userId}/richmenu", false, s.handleGetUserRichMenu),
		newRoute("DELETE /v2/bot/user/{userId}/richmenu", false, s.handleUnlinkUserRichMenu),
		newRoute("POST /v2/bot/richmenu/bulk/link", false, s.handleBulkLink),
		newRoute("POST /v2/bot/richmenu/bulk/unlink", false, s.handleBulkUnlink),
		newRoute("POST /v2/bot/richmenu/alias", false, s.handleCreateAlias),
		newRoute("GET /v2/bot/richmenu/alias/list", false, s.handleListAliases),
		newRoute("GET /v2/bot/richmenu/alias/{richMenuAliasId}", false, s.handleGetAlias),
		newRoute("POST /v2/bot/richmenu/alias/{richMenuAliasId}", false, s.handleUpdateAlias),
		newRoute(RouteAliasDelete, false, s.handleDeleteAlias),
	}
}

// match finds the route for method and path. Among routes matching the path, the one with a
// literal segment where the others have a parameter wins, so ".../alias/list" is not read as
// ".../{richMenuId}". pathKnown tells a wrong method (405) from an unknown path (404).
func (s *Server) match(method, path string) (rt *route, params map[string]string, pathKnown bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, cand := range s.routes {
		if len(cand.segs) != len(segs) {
			continue
		}
		p, ok := matchSegs(cand.segs, segs)
		if !ok {
			continue
		}
		pathKnown = true
		if cand.method != method {
			continue
		}
		if rt == nil || moreSpecific(cand.segs, rt.segs) {
			rt, params = cand, p
		}
	}
	return rt, params, pathKnown
}

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	var params map[string]string
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") {
			if segs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[strings.Trim(p, "{}")] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}

func moreSpecific(a, b []string) bool {
	for i := range a {
		ap, bp := strings.HasPrefix(a[i], "{"), strings.HasPrefix(b[i], "{")
		if ap != bp {
			return bp
		}
	}
	return false
}

// call is one API request on its way through the pipeline.
type call struct {
	s        *Server
	w        http.ResponseWriter
	r        *http.Request
	body     []byte
	id       string
	rt       *route
	retryKey string
	status   int
	resp     []byte
	fault    bool
	sent     []sentMessage // push's sentMessages, remembered with an accepted retry key
}

type errorDetail struct {
	Message  string `json:"message"`
	Property string `json:"property,omitempty"`
}

type errorBody struct {
	Message      string        `json:"message"`
	Details      []errorDetail `json:"details,omitempty"`
	SentMessages []sentMessage `json:"sentMessages,omitempty"`
}

// sentMessagesBody is the answer to a push or a reply.
type sentMessagesBody struct {
	SentMessages []sentMessage `json:"sentMessages"`
}

type sentMessage struct {
	ID         string `json:"id"`
	QuoteToken string `json:"quoteToken,omitempty"`
}

// json writes v with status. It settles the request's retry key first, so a client that retries
// the moment it sees the answer already meets the accepted key.
func (c *call) json(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"An error occurred in the API server"}`)
	}
	c.write(status, "application/json", b)
}

func (c *call) write(status int, contentType string, b []byte) {
	if c.status != 0 {
		return
	}
	if c.retryKey != "" {
		c.s.settleRetryKey(c.retryKey, c.id, status/100 == 2, c.sent)
	}
	c.status, c.resp = status, b
	c.w.Header().Set("Content-Type", contentType)
	c.w.WriteHeader(status)
	_, _ = c.w.Write(b)
}

func (c *call) fail(status int, message string, details ...errorDetail) {
	c.json(status, errorBody{Message: message, Details: details})
}

// apiError is an answer decided under s.mu and written after it is released, so that no lock
// is held while writing to the network.
type apiError struct {
	status  int
	message string
}

// answer writes fail when set, else v with status.
func (c *call) answer(fail *apiError, status int, v any) {
	if fail != nil {
		c.fail(fail.status, fail.message)
		return
	}
	c.json(status, v)
}

// invalid answers 400 with LINE's summary line and one detail per problem.
func (c *call) invalid(details []errorDetail) {
	c.fail(http.StatusBadRequest, bodyErrorsMessage(len(details)), details...)
}

func bodyErrorsMessage(n int) string {
	return "The request body has " + strconv.Itoa(n) + " error(s)"
}

// decode unmarshals the body into v, answering 400 when it is not JSON of that shape.
func (c *call) decode(v any) bool {
	if err := json.Unmarshal(c.body, v); err != nil {
		c.fail(http.StatusBadRequest, "The request body could not be parsed as JSON")
		return false
	}
	return true
}

// serveAPI runs every Messaging API request through LINE's order of checks: route, token, size,
// retry-key shape, rate limit, retry-key memory, injected faults, then the endpoint itself.
// Every request is recorded, whatever its fate.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	c := &call{s: s, w: w, r: r, id: newRequestID()}
	w.Header().Set("X-Line-Request-Id", c.id)
	at := s.now()
	body := readBody(r)
	c.body = body
	defer func() {
		s.record(c, at)
		// Checked first because the arguments are allocated even when the line is discarded.
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("api request", "route", routePattern(c.rt), "status", c.status, "line_request_id", c.id)
		}
	}()

	rt, params, pathKnown := s.match(r.Method, r.URL.Path)
	if rt == nil {
		if pathKnown {
			c.fail(http.StatusMethodNotAllowed, "Method not allowed")
			return
		}
		c.fail(http.StatusNotFound, "Not found")
		return
	}
	c.rt = rt
	for k, v := range params {
		r.SetPathValue(k, v)
	}
	if !s.authorized(c) {
		return
	}
	if len(body) > maxBodyBytes {
		c.fail(http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	// The SDK sends the header even when its argument is empty, so an empty value means none.
	key := r.Header.Get("X-Line-Retry-Key")
	if key != "" {
		if !rt.retryKey {
			c.fail(http.StatusBadRequest, "X-Line-Retry-Key is not supported by this endpoint")
			return
		}
		if !validRetryKey(key) {
			c.fail(http.StatusBadRequest, "The X-Line-Retry-Key header must be a UUID",
				errorDetail{Message: "must be a UUID", Property: "X-Line-Retry-Key"})
			return
		}
	}
	// Retries use rate-limit tokens too, so the bucket comes before the retry-key memory.
	if !s.allow(rt.pattern) {
		c.fail(http.StatusTooManyRequests, MessageRateLimit)
		return
	}
	if key != "" {
		if prev, conflict := s.claimRetryKey(key, c.id); conflict {
			if prev.accepted {
				w.Header().Set("X-Line-Accepted-Request-Id", prev.requestID)
			}
			c.json(http.StatusConflict, errorBody{Message: MessageRetryKeyAccepted, SentMessages: prev.sent})
			return
		}
		c.retryKey = key
		defer func() {
			if c.status == 0 { // the handler wrote nothing (a panic or a cancelled fault)
				s.settleRetryKey(key, c.id, false, nil)
			}
		}()
	}
	if s.applyFault(c) {
		return
	}
	rt.h(c)
}

// readBody reads the body, cut after maxBodyBytes+1 bytes. A body within the limit that
// announces its length is read into one buffer of that size, where io.ReadAll would grow one
// step by step.
func readBody(r *http.Request) []byte {
	size := 512
	if n := r.ContentLength; n > 0 && n <= maxBodyBytes {
		size = int(n) + 1 // room to meet EOF without growing
	}
	b := make([]byte, 0, size)
	lr := io.LimitReader(r.Body, maxBodyBytes+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			return b
		}
	}
}

// authorized checks the bearer token, answering 401 with LINE's texts when it is missing or wrong.
func (s *Server) authorized(c *call) bool {
	h := c.r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		c.fail(http.StatusUnauthorized, "Authorization header required. Must follow the scheme, 'Authorization: Bearer <ACCESS TOKEN>'")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) != 1 {
		c.fail(http.StatusUnauthorized, "Authentication failed. Confirm that the access token in the authorization header is valid.")
		return false
	}
	return true
}

type retryEntry struct {
	requestID string
	at        time.Time
	accepted  bool
	sent      []sentMessage
}

// claimRetryKey reserves key for the request, or reports the earlier request that holds it.
// A key is held while its first request is in flight and for 24 h after it was accepted.
func (s *Server) claimRetryKey(key, requestID string) (retryEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if e := s.retryKeys[key]; e != nil && now.Sub(e.at) < retryKeyMemory {
		return *e, true
	}
	if len(s.retryKeys) > 0 && len(s.retryKeys)%4096 == 0 {
		for k, e := range s.retryKeys {
			if e.accepted && now.Sub(e.at) >= retryKeyMemory {
				delete(s.retryKeys, k)
			}
		}
	}
	s.retryKeys[key] = &retryEntry{requestID: requestID, at: now}
	return retryEntry{}, false
}

// settleRetryKey keeps an accepted key for 24 h and frees a failed one, so that a retry after a
// 5xx or a timeout is processed rather than refused.
func (s *Server) settleRetryKey(key, requestID string, accepted bool, sent []sentMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.retryKeys[key]
	if e == nil || e.requestID != requestID || e.accepted {
		return
	}
	if !accepted {
		delete(s.retryKeys, key)
		return
	}
	e.accepted = true
	e.sent = sent
}
