package linesim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestMailboxHandlerListsMails(t *testing.T) {
	mb := mustMailbox(t)
	for range 2 {
		if err := sendPlain(mb.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mails, err := mb.WaitMessages(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mb.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got []mailView
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].At.Equal(mails[1].At) || got[0].Subject != "【到校通知】 test" || got[0].Text != "王○明" ||
		got[0].HTML != "<p>hi</p>" || len(got[0].To) != 1 || got[0].To[0] != "b@example.com" {
		t.Errorf("mails listed %+v", got)
	}
}
