package settings

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/taipei-doit/ecardbot"
)

// option is one choice of a select.
type option struct {
	Value, Label string
	Selected     bool
}

type addChildData struct {
	CSRF                       string
	Districts, Levels, Schools []option
	District, Level            string
	Ready                      bool // district and level chosen: the school list is shown
	Name, StudentNo, BirthDate string
	Errors                     [][2]string
}

// errNoMatch is the one message for any detail that does not match the roster: saying which
// field was wrong would let someone find a child's birth date or ID one field at a time.
var errNoMatch = [2]string{
	"資料與學校名冊不符。請確認學校、姓名、學號、出生日期與證號都與學校的紀錄相同。",
	"These details do not match the school's roster. Check that the school, name, student number, date of birth and ID number are exactly as the school has them.",
}

// addChildPage fills the form for a district and level; the school list is read only once
// both are valid. The ID number is never put back into the form.
func (s *Settings) addChildPage(c *gin.Context, r request, district, level string) (*addChildData, error) {
	d := &addChildData{CSRF: r.csrf}
	if ecardbot.ValidDistrict(district) {
		d.District = district
	}
	if ecardbot.ValidLevel(level) {
		d.Level = level
	}
	for _, dist := range ecardbot.Districts {
		d.Districts = append(d.Districts, option{Value: dist.Name, Label: dist.Name + " " + dist.English, Selected: dist.Name == d.District})
	}
	for _, l := range ecardbot.Levels {
		d.Levels = append(d.Levels, option{Value: l, Label: l + " " + levelEnglish[l], Selected: l == d.Level})
	}
	if d.District == "" || d.Level == "" {
		return d, nil
	}
	d.Ready = true
	schools, err := s.store.Schools(c.Request.Context(), d.District, d.Level)
	if err != nil {
		return nil, err
	}
	for _, sc := range schools {
		d.Schools = append(d.Schools, option{Value: strconv.FormatInt(sc.ID, 10), Label: sc.Name})
	}
	return d, nil
}

var levelEnglish = map[string]string{
	ecardbot.LevelElementary: "Elementary",
	ecardbot.LevelJunior:     "Junior high",
	ecardbot.LevelSenior:     "Senior high",
	ecardbot.LevelVocational: "Vocational high",
}

func (s *Settings) addChildForm(c *gin.Context, r request) error {
	d, err := s.addChildPage(c, r, c.Query("district"), c.Query("level"))
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "add_child", d)
}

// addChild checks the form, then matches it against the roster under the attempt limit. Only
// a match that reaches the roster counts as an attempt: a malformed form reveals nothing about
// any child. On success a child new to the guardian gets LINE notices of every kind; adding a
// child again keeps the notices chosen for it.
func (s *Settings) addChild(c *gin.Context, r request) error {
	ctx := c.Request.Context()
	d, err := s.addChildPage(c, r, c.PostForm("district"), c.PostForm("level"))
	if err != nil {
		return err
	}
	d.Name = strings.TrimSpace(c.PostForm("name"))
	d.StudentNo = strings.TrimSpace(c.PostForm("student_no"))
	d.BirthDate = strings.TrimSpace(c.PostForm("birth_date"))
	var schoolID int64
	for i := range d.Schools {
		if d.Schools[i].Value == c.PostForm("school") {
			d.Schools[i].Selected = true
			schoolID, _ = strconv.ParseInt(d.Schools[i].Value, 10, 64)
		}
	}
	if schoolID == 0 {
		d.Errors = append(d.Errors, [2]string{"請選擇學校。", "Choose the school."})
	}
	if d.Name == "" || utf8.RuneCountInString(d.Name) > 100 {
		d.Errors = append(d.Errors, [2]string{"請填寫孩子的姓名。", "Write the child's name."})
	}
	if d.StudentNo == "" || utf8.RuneCountInString(d.StudentNo) > 32 {
		d.Errors = append(d.Errors, [2]string{"請填寫學號。", "Write the student number."})
	}
	if t, err := time.Parse(time.DateOnly, d.BirthDate); err != nil || t.Format(time.DateOnly) != d.BirthDate {
		d.Errors = append(d.Errors, [2]string{"請填寫出生日期。", "Write the date of birth."})
	}
	id, err := ecardbot.ValidateNationalID(c.PostForm("national_id"))
	if err != nil {
		d.Errors = append(d.Errors, [2]string{"身分證字號或居留證號不正確，請逐字檢查。", ecardbot.ErrorMessage(err)})
	}
	if len(d.Errors) > 0 {
		return s.render(c, http.StatusBadRequest, "add_child", d)
	}

	q := ecardbot.StudentQuery{SchoolID: schoolID, StudentNo: d.StudentNo, Name: d.Name, BirthDate: d.BirthDate,
		NationalIDHash: ecardbot.KeyedHash(s.cfg.SecretKey, ecardbot.PurposeNationalID, id)}
	studentID, err := s.store.MatchStudent(ctx, r.guardianID, q, s.cfg.Now(), s.cfg.MaxAttempts, s.cfg.AttemptWindow)
	var tooMany *ecardbot.TooManyAttemptsError
	switch {
	case errors.As(err, &tooMany):
		s.log.Info("add child refused", "guardian_id", r.guardianID, "reason", "too many attempts")
		zh, en := s.retryText(tooMany.RetryAt)
		d.Errors = append(d.Errors, [2]string{
			"嘗試次數過多。為保護孩子的資料，請於 " + zh + " 之後再試。",
			"Too many attempts. To protect children's data, please try again after " + en + ".",
		})
		return s.render(c, http.StatusTooManyRequests, "add_child", d)
	case ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND:
		s.log.Info("add child refused", "guardian_id", r.guardianID, "reason", "no match")
		d.Errors = append(d.Errors, errNoMatch)
		return s.render(c, http.StatusBadRequest, "add_child", d)
	case err != nil:
		return err
	}

	_, err = s.ownChild(ctx, r, studentID)
	had := err == nil
	if err != nil && ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
		return err
	}
	if err := s.guardians.AddGuardianship(ctx, r.guardianID, studentID); err != nil {
		return err
	}
	if !had {
		var defaults []ecardbot.Subscription
		for _, k := range ecardbot.NoticeKinds {
			defaults = append(defaults, ecardbot.Subscription{StudentID: studentID, Kind: k, Channel: ecardbot.ChannelLINE})
		}
		if err := s.guardians.SetSubscriptions(ctx, r.guardianID, studentID, defaults); err != nil {
			return err
		}
	}
	s.log.Info("child added", "guardian_id", r.guardianID, "student_id", studentID)
	return done(c, "added", "")
}
