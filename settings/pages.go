package settings

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/push"
	"github.com/taipei-doit/ecardbot/web"
)

// childView is a child as the pages show them: the name masked, as in the notices themselves,
// so a page seen over a shoulder does not name the child in full.
type childView struct {
	ID        int64
	Name      string
	School    string
	StudentNo string
	Class     string
	Active    bool
	Rows      []noticeRow
}

// noticeRow is one line of a child's notices grid.
type noticeRow struct {
	Kind           ecardbot.NoticeKind
	Label, LabelEn string
	LINE, Email    bool
}

type homeData struct {
	CSRF           string
	Flash          *[2]string
	Children       []childView
	EmailOn        bool
	Email          string
	EmailConfirmed bool
	EmailInput     string
	EmailError     *[2]string
}

func viewChild(ch ecardbot.Child, subs []ecardbot.Subscription) childView {
	v := childView{ID: ch.StudentID, Name: push.MaskName(ch.Name), School: ch.SchoolName, StudentNo: ch.StudentNo,
		Class: ch.Class, Active: ch.Active}
	for _, k := range ecardbot.NoticeKinds {
		row := noticeRow{Kind: k, Label: kindLabels[k][0], LabelEn: kindLabels[k][1]}
		for _, sub := range subs {
			if sub.StudentID == ch.StudentID && sub.Kind == k {
				row.LINE = row.LINE || sub.Channel == ecardbot.ChannelLINE
				row.Email = row.Email || sub.Channel == ecardbot.ChannelEmail
			}
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

// homePage gathers the settings page of the guardian.
func (s *Settings) homePage(ctx context.Context, r request) (*homeData, error) {
	g, err := s.store.Guardian(ctx, r.guardianID)
	if err != nil {
		return nil, err
	}
	children, err := s.store.Children(ctx, r.guardianID)
	if err != nil {
		return nil, err
	}
	subs, err := s.guardians.Subscriptions(ctx, r.guardianID)
	if err != nil {
		return nil, err
	}
	d := &homeData{CSRF: r.csrf, EmailOn: s.mailer != nil, Email: g.Email, EmailConfirmed: g.EmailConfirmedAt != nil, EmailInput: g.Email}
	for _, ch := range children {
		d.Children = append(d.Children, viewChild(ch, subs))
	}
	return d, nil
}

func (s *Settings) home(c *gin.Context, r request) error {
	d, err := s.homePage(c.Request.Context(), r)
	if err != nil {
		return err
	}
	if f, ok := flashes[c.Query("done")]; ok {
		d.Flash = &f
	}
	return s.render(c, http.StatusOK, "home", d)
}

// childID reads the :id of a child's route. A malformed one is as unknown as another
// guardian's child.
func childID(c *gin.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, ecardbot.Errorf(ecardbot.ENOTFOUND, "No such child.")
	}
	return id, nil
}

// done sends the parent back to the settings page with a notice.
func done(c *gin.Context, flash, anchor string) error {
	u := "/settings?done=" + url.QueryEscape(flash)
	if anchor != "" {
		u += "#" + anchor
	}
	web.SetHeaders(c.Writer.Header())
	c.Redirect(http.StatusSeeOther, u)
	return nil
}

// saveNotices makes the ticked boxes the child's subscriptions. With the e-mail channel off the
// e-mail column is not on the page, so the child's e-mail subscriptions are kept as they are
// rather than read as unticked.
func (s *Settings) saveNotices(c *gin.Context, r request) error {
	ctx := c.Request.Context()
	id, err := childID(c)
	if err != nil {
		return err
	}
	var subs []ecardbot.Subscription
	for _, k := range ecardbot.NoticeKinds {
		if c.PostForm("line_"+string(k)) != "" {
			subs = append(subs, ecardbot.Subscription{StudentID: id, Kind: k, Channel: ecardbot.ChannelLINE})
		}
		if s.mailer != nil && c.PostForm("email_"+string(k)) != "" {
			subs = append(subs, ecardbot.Subscription{StudentID: id, Kind: k, Channel: ecardbot.ChannelEmail})
		}
	}
	if s.mailer == nil {
		current, err := s.guardians.Subscriptions(ctx, r.guardianID)
		if err != nil {
			return err
		}
		for _, sub := range current {
			if sub.StudentID == id && sub.Channel == ecardbot.ChannelEmail {
				subs = append(subs, sub)
			}
		}
	}
	if err := s.guardians.SetSubscriptions(ctx, r.guardianID, id, subs); err != nil {
		return err
	}
	s.log.Info("notices saved", "guardian_id", r.guardianID, "student_id", id)
	return done(c, "saved", fmt.Sprintf("child-%d", id))
}

// ownChild returns the guardian's child with the id, or ENOTFOUND: another guardian's child is
// as unknown as a child that does not exist.
func (s *Settings) ownChild(ctx context.Context, r request, id int64) (ecardbot.Child, error) {
	children, err := s.store.Children(ctx, r.guardianID)
	if err != nil {
		return ecardbot.Child{}, err
	}
	for _, ch := range children {
		if ch.StudentID == id {
			return ch, nil
		}
	}
	return ecardbot.Child{}, ecardbot.Errorf(ecardbot.ENOTFOUND, "No such child.")
}

// removeChildForm asks before removing: the page has no script for a confirm() dialog.
func (s *Settings) removeChildForm(c *gin.Context, r request) error {
	id, err := childID(c)
	if err != nil {
		return err
	}
	ch, err := s.ownChild(c.Request.Context(), r, id)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "remove", struct {
		CSRF  string
		Child childView
	}{r.csrf, viewChild(ch, nil)})
}

func (s *Settings) removeChild(c *gin.Context, r request) error {
	id, err := childID(c)
	if err != nil {
		return err
	}
	if err := s.guardians.RemoveGuardianship(c.Request.Context(), r.guardianID, id); err != nil {
		return err
	}
	s.log.Info("child removed", "guardian_id", r.guardianID, "student_id", id)
	return done(c, "removed", "")
}

// setEmail stores the address unconfirmed and mails it a confirmation link; nothing else is
// ever mailed to it until the link is opened and its button pressed. An empty address removes
// it. A guardian gets at most MaxConfirmMails confirmation mails within ConfirmMailWindow:
// beyond that nothing is stored or sent, and the page says when to try again.
func (s *Settings) setEmail(c *gin.Context, r request) error {
	ctx := c.Request.Context()
	if s.mailer == nil {
		return ecardbot.Errorf(ecardbot.ENOTFOUND, "The e-mail channel is off.")
	}
	input := c.PostForm("email")
	if input == "" {
		if err := s.guardians.SetEmail(ctx, r.guardianID, "", false); err != nil {
			return err
		}
		s.log.Info("e-mail removed", "guardian_id", r.guardianID)
		return done(c, "email-removed", "email")
	}
	email, err := ecardbot.ValidateEmail(input)
	if err != nil {
		return s.homeWithEmailError(c, r, http.StatusBadRequest, input,
			[2]string{"電子郵件地址格式不正確，請寫成 name@example.com。", ecardbot.ErrorMessage(err)})
	}
	g, err := s.store.Guardian(ctx, r.guardianID)
	if err != nil {
		return err
	}
	if g.Email == email && g.EmailConfirmedAt != nil {
		return done(c, "saved", "email")
	}
	token := web.NewToken()
	// The confirmation first: under the limit it is what decides whether this request may
	// mail at all, and a refused one leaves the address as it was.
	now := s.cfg.Now()
	err = s.store.CreateEmailConfirmationLimited(ctx, s.hash(ecardbot.PurposeEmailConfirm, token), r.guardianID, email,
		now, now.Add(ConfirmTTL), MaxConfirmMails, ConfirmMailWindow)
	var tooMany *ecardbot.TooManyMailsError
	if errors.As(err, &tooMany) {
		s.log.Info("confirmation mail refused", "guardian_id", r.guardianID, "reason", "too many mails")
		zh, en := s.retryText(tooMany.RetryAt)
		return s.homeWithEmailError(c, r, http.StatusTooManyRequests, input, [2]string{
			"確認信寄送次數過多。請於 " + zh + " 之後再試。",
			"Too many confirmation mails were sent. Please try again after " + en + ".",
		})
	} else if err != nil {
		return err
	}
	if err := s.guardians.SetEmail(ctx, r.guardianID, email, false); err != nil {
		return err
	}
	link := s.base + "/settings/email/confirm?t=" + url.QueryEscape(token)
	if err := s.mailer.SendConfirmation(ctx, email, g.Language, link); err != nil {
		s.log.Warn("confirmation mail failed", "guardian_id", r.guardianID, "error", err)
		return s.homeWithEmailError(c, r, http.StatusServiceUnavailable, email,
			[2]string{"確認信寄送失敗，請稍後再試。", "The confirmation mail could not be sent; please try again later."})
	}
	s.log.Info("confirmation mail sent", "guardian_id", r.guardianID)
	return done(c, "email-sent", "email")
}

func (s *Settings) homeWithEmailError(c *gin.Context, r request, status int, input string, msg [2]string) error {
	d, err := s.homePage(c.Request.Context(), r)
	if err != nil {
		return err
	}
	d.EmailInput, d.EmailError = input, &msg
	return s.render(c, status, "home", d)
}

// confirmEmailForm is where the link in the confirmation mail leads. Opening it changes
// nothing: mail scanners and link previews open links too, and a mistyped address at a scanned
// mailbox must not become confirmed. It shows the address, masked, and a button that posts the
// token to confirmEmail. It needs no session, since the mail may be opened in another browser
// than the settings': the unguessable single-use token is the proof.
func (s *Settings) confirmEmailForm(c *gin.Context) error {
	ctx := c.Request.Context()
	token := c.Query("t")
	if token == "" || len(token) > maxTokenLen {
		return s.message(c, http.StatusBadRequest, msgBadLink)
	}
	guardianID, email, err := s.store.PeekEmailConfirmation(ctx, s.hash(ecardbot.PurposeEmailConfirm, token), s.cfg.Now())
	if m, status, ok := confirmRefusal(err); ok {
		return s.message(c, status, m)
	} else if err != nil {
		return err
	}
	g, err := s.store.Guardian(ctx, guardianID)
	if err != nil {
		return err
	}
	if g.Email != email {
		return s.message(c, http.StatusGone, msgEmailChanged)
	}
	return s.render(c, http.StatusOK, "confirm_email", struct {
		Token, Email string
	}{token, maskEmail(email)})
}

// confirmEmail is the confirmation page's button. The store confirms the token's address only
// while it is still the guardian's, in one statement, so an address changed meanwhile is
// never marked confirmed.
func (s *Settings) confirmEmail(c *gin.Context) error {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	if err := c.Request.ParseForm(); err != nil {
		return s.message(c, http.StatusBadRequest, msgBadLink)
	}
	token := c.Request.PostForm.Get("t")
	if token == "" || len(token) > maxTokenLen {
		return s.message(c, http.StatusBadRequest, msgBadLink)
	}
	guardianID, _, err := s.store.UseEmailConfirmation(c.Request.Context(), s.hash(ecardbot.PurposeEmailConfirm, token), s.cfg.Now())
	if errors.Is(err, ecardbot.ErrEmailChanged) {
		s.log.Info("e-mail confirmation refused", "guardian_id", guardianID, "reason", "address changed")
		return s.message(c, http.StatusGone, msgEmailChanged)
	}
	if m, status, ok := confirmRefusal(err); ok {
		s.log.Info("e-mail confirmation refused", "reason", ecardbot.ErrorCode(err))
		return s.message(c, status, m)
	} else if err != nil {
		return err
	}
	s.log.Info("e-mail confirmed", "guardian_id", guardianID)
	return s.message(c, http.StatusOK, msgEmailConfirmed)
}

// confirmRefusal is the page for a confirmation token that cannot be used: unknown (or deleted
// once expired), or used or expired.
func confirmRefusal(err error) (message, int, bool) {
	switch ecardbot.ErrorCode(err) {
	case ecardbot.ENOTFOUND:
		return msgBadLink, http.StatusBadRequest, true
	case ecardbot.ECONFLICT:
		return msgSpentConfirm, http.StatusGone, true
	}
	return message{}, 0, false
}

// maskEmail shows enough of an address for its owner to recognise it and little to anyone
// else: the first character of the local part, then a fixed mask, then the domain:
// parent@example.com → p●●●@example.com.
func maskEmail(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 {
		return "●●●"
	}
	r := []rune(email[:at])
	return string(r[0]) + "●●●" + email[at:]
}

type historyView struct {
	When, Kind, KindEn string
	Child, School      string
	States             []stateView
}

type stateView struct {
	Channel, Zh, En, Class string
}

func (s *Settings) history(c *gin.Context, r request) error {
	now := s.cfg.Now()
	entries, err := s.store.History(c.Request.Context(), r.guardianID, now.AddDate(0, 0, -HistoryDays), historyLimit)
	if err != nil {
		return err
	}
	views := make([]historyView, 0, len(entries))
	for _, e := range entries {
		v := historyView{When: e.At.In(s.cfg.Location).Format("01/02 15:04"), Kind: kindLabels[e.Kind][0], KindEn: kindLabels[e.Kind][1],
			Child: push.MaskName(e.ChildName), School: e.SchoolName}
		for _, d := range e.Deliveries {
			zh, en, class := stateLabel(d.State)
			ch := "LINE"
			if d.Channel == ecardbot.ChannelEmail {
				ch = "E-mail"
			}
			v.States = append(v.States, stateView{Channel: ch, Zh: zh, En: en, Class: class})
		}
		views = append(views, v)
	}
	return s.render(c, http.StatusOK, "history", struct {
		Days    int
		Entries []historyView
	}{HistoryDays, views})
}
