package school_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/school"
)

const (
	subscriberHeader = "line_user_id,taipeipass_id,school_code,student_no,arrive,leave,absent,email\n"
	userA            = "U4af4980629a0b1c2d3e4f5a6b7c8d9e0"
	userB            = "Uffffffffffffffffffffffffffffff01"
)

func TestParseSubscribers(t *testing.T) {
	t.Parallel()
	in := "\uFEFF" + strings.ReplaceAll(subscriberHeader, "\n", "\r\n") +
		userA + ",3c1e2f8a-tp-a,313601,1001,1,1,1,parent@example.com\r\n" +
		userA + ", 3c1e2f8a-tp-a ,313601,1002,1,0,0,\r\n" +
		"\r\n" +
		userB + ",tp-b,363f01,2001,0,0,0, b@example.com.tw \r\n"
	got, err := school.ParseSubscribers(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []ecardbot.SubscriberEntry{
		{Line: 2, LineUserID: userA, TaipeiPassID: "3c1e2f8a-tp-a", SchoolCode: "313601", StudentNo: "1001",
			Kinds: []ecardbot.NoticeKind{ecardbot.KindArrived, ecardbot.KindLeft, ecardbot.KindAbsent}, Email: "parent@example.com"},
		{Line: 3, LineUserID: userA, TaipeiPassID: "3c1e2f8a-tp-a", SchoolCode: "313601", StudentNo: "1002",
			Kinds: []ecardbot.NoticeKind{ecardbot.KindArrived}},
		{Line: 5, LineUserID: userB, TaipeiPassID: "tp-b", SchoolCode: "363F01", StudentNo: "2001",
			Kinds: []ecardbot.NoticeKind{}, Email: "b@example.com.tw"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestParseSubscribersErrors(t *testing.T) {
	t.Parallel()
	good := userA + ",tp-a,313601,1001,1,1,1,a@example.com\n"
	tests := []struct {
		name     string
		in       string
		want     []school.LineError
		wantGood int // entries returned with the error
	}{
		{name: "empty file", in: "",
			want: []school.LineError{{Line: 1, Message: "empty file: the first line must be the header " + strings.TrimSuffix(subscriberHeader, "\n")}}},
		{name: "header only", in: subscriberHeader,
			want: []school.LineError{{Line: 2, Message: "no subscribers after the header"}}},
		{name: "missing column", in: "line_user_id,taipeipass_id,school_code,student_no,arrive,leave,absent\n",
			want: []school.LineError{{Line: 1, Message: `missing column "email"; the header must be ` + strings.TrimSuffix(subscriberHeader, "\n")}}},
		{name: "every kind of bad line, all reported", wantGood: 2,
			in: subscriberHeader + good +
				"U123,tp-a,313601,1001,1,1,1,\n" +
				strings.ToUpper(userA[:1]) + strings.ToUpper(userA[1:]) + ",tp-a,313601,1001,1,1,1,\n" +
				userA + ",,313601,1001,1,1,1,\n" +
				userA + ",tp-a,,,1,1,1,\n" +
				userA + ",tp-a,31360,1001,1,1,1,\n" +
				userA + ",tp-a,313601,1001,yes,true,2,\n" +
				userA + ",tp-a,313601,1001,,1,1,\n" +
				userA + ",tp-a,313601,1001,1,1,1,not-an-address\n" +
				userA + ",tp-a,313601,1001,1,1,1,Parent <a@example.com>\n" +
				userA + ",tp-a,313601,1001,1,1,1,a@localhost\n" +
				userA + ",tp-a,313601,1001,1,1\n" +
				good,
			want: []school.LineError{
				{Line: 3, Message: "line_user_id must be U followed by 32 lower-case hexadecimal digits"},
				{Line: 4, Message: "line_user_id must be U followed by 32 lower-case hexadecimal digits"},
				{Line: 5, Message: "taipeipass_id is required"},
				{Line: 6, Message: "school_code is required; student_no is required"},
				{Line: 7, Message: "school_code must be 6 letters or digits, e.g. 313601"},
				{Line: 8, Message: "arrive must be 1 or 0; leave must be 1 or 0; absent must be 1 or 0"},
				{Line: 9, Message: "arrive must be 1 or 0"},
				{Line: 10, Message: "email is not a valid address (write it as name@example.com)"},
				{Line: 11, Message: "email is not a valid address (write it as name@example.com)"},
				{Line: 12, Message: "email is not a valid address (write it as name@example.com)"},
				{Line: 13, Message: "has 6 fields, the header has 8"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := school.ParseSubscribers(strings.NewReader(tt.in))
			checkParseError(t, err, tt.want, len(tt.want))
			if len(got) != tt.wantGood {
				t.Errorf("%d good entries returned, want %d", len(got), tt.wantGood)
			}
			for _, e := range got {
				if strings.Contains(err.Error(), e.Email) && e.Email != "" {
					t.Errorf("the error quotes an address")
				}
			}
		})
	}
}
