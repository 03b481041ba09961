package school_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/school"
)

const schoolHeader = "code,name,district,level,cutoff\n"

func TestParseSchools(t *testing.T) {
	t.Parallel()
	songshan := ecardbot.School{Code: "313601", Name: "松山國小", District: "松山區", Level: "國小",
		Cutoff: ecardbot.DefaultCutoff, EarliestLeave: ecardbot.DefaultEarliestLeave}
	jieshou := ecardbot.School{Code: "313501", Name: "介壽國中", District: "松山區", Level: "國中",
		Cutoff: 7*60 + 50, EarliestLeave: ecardbot.DefaultEarliestLeave}
	tests := []struct {
		name string
		in   string
		want []ecardbot.School
	}{
		{name: "two schools, default and own cutoff",
			in:   schoolHeader + "313601,松山國小,松山區,國小,\n313501,介壽國中,松山區,國中,07:50\n",
			want: []ecardbot.School{songshan, jieshou}},
		{name: "Excel: byte-order mark, CRLF, spaces, quoted field",
			in:   "\uFEFFcode, name ,district,level,cutoff\r\n 313601 ,\"松山國小\", 松山區 ,國小, \r\n",
			want: []ecardbot.School{songshan}},
		{name: "columns found by name in any order and case",
			in:   "Cutoff,LEVEL,district,name,code\n07:50,國中,松山區,介壽國中,313501\n",
			want: []ecardbot.School{jieshou}},
		{name: "code upper-cased, letters allowed",
			in: schoolHeader + "363f01,啟聰學校,大同區,高職,8:00\n",
			want: []ecardbot.School{{Code: "363F01", Name: "啟聰學校", District: "大同區", Level: "高職",
				Cutoff: 8 * 60, EarliestLeave: ecardbot.DefaultEarliestLeave}}},
		{name: "blank lines skipped",
			in:   schoolHeader + "\n313601,松山國小,松山區,國小,\n\n",
			want: []ecardbot.School{songshan}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := school.ParseSchools(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("schools (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSchoolsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []school.LineError
	}{
		{name: "empty file", in: "",
			want: []school.LineError{{1, "empty file: the first line must be the header code,name,district,level,cutoff"}}},
		{name: "only a byte-order mark", in: "\uFEFF",
			want: []school.LineError{{1, "empty file: the first line must be the header code,name,district,level,cutoff"}}},
		{name: "header only", in: schoolHeader,
			want: []school.LineError{{2, "no schools after the header"}}},
		{name: "missing, unknown and repeated columns", in: "code,name,name,distrct,level\n313601,a,b,c,d\n",
			want: []school.LineError{{1, `column "name" appears twice; unknown column "distrct"; missing column "district"; ` +
				`missing column "cutoff"; the header must be code,name,district,level,cutoff`}}},
		{name: "no header, data first", in: "313601,松山國小,松山區,國小,\n",
			want: []school.LineError{{1, `unknown column "313601"; unknown column "松山國小"; unknown column "松山區"; ` +
				`unknown column "國小"; unknown column ""; missing column "code"; missing column "name"; ` +
				`missing column "district"; missing column "level"; missing column "cutoff"; ` +
				`the header must be code,name,district,level,cutoff`}}},
		{name: "malformed header", in: "code,na\"me,district,level,cutoff\n",
			want: []school.LineError{{1, `malformed header: bare " in non-quoted-field`}}},
		{name: "every problem of a line, and every line", in: schoolHeader +
			"31360,,中壢區,大學,8:5\n" +
			"313601,松山國小,松山區,國小,24:00\n" +
			"ABCDE!,x,松山區,國小,\n",
			want: []school.LineError{
				{2, "code must be 6 letters or digits, e.g. 313601; name is required; district must be one of Taipei's 12 districts, e.g. 松山區; " +
					"level must be 國小, 國中, 高中 or 高職; cutoff must be a time of day as HH:MM, e.g. 08:30"},
				{3, "cutoff must be a time of day as HH:MM, e.g. 08:30"},
				{4, "code must be 6 letters or digits, e.g. 313601"},
			}},
		{name: "code required", in: schoolHeader + ",松山國小,松山區,國小,\n",
			want: []school.LineError{{2, "code is required"}}},
		{name: "district in English is not accepted", in: schoolHeader + "313601,松山國小,Songshan,國小,\n",
			want: []school.LineError{{2, "district must be one of Taipei's 12 districts, e.g. 松山區"}}},
		{name: "repeated code names both lines", in: schoolHeader +
			"313601,松山國小,松山區,國小,\n313501,介壽國中,松山區,國中,\n313601,松山國小,松山區,國小,\n",
			want: []school.LineError{{4, "code 313601 repeats line 2"}}},
		{name: "name too long", in: schoolHeader + "313601," + strings.Repeat("松", 101) + ",松山區,國小,\n",
			want: []school.LineError{{2, "name is longer than 100 characters"}}},
		{name: "wrong number of fields", in: schoolHeader + "313601,松山國小,松山區,國小\n313501,介壽國中,松山區,國中,,x\n",
			want: []school.LineError{{2, "has 4 fields, the header has 5"}, {3, "has 6 fields, the header has 5"}}},
		{name: "not UTF-8 (Big5)", in: schoolHeader + "313601,\xb1\x51\xa4\x73,松山區,國小,\n",
			want: []school.LineError{{2, `is not UTF-8 text (save the file as "CSV UTF-8")`}}},
		{name: "control characters", in: schoolHeader + "313601,松山\x00國小,松山區,國小,\n313501,\"介壽\n國中\",松山區,國中,\n",
			want: []school.LineError{{2, "a field contains control characters"}, {3, "a field contains control characters"}}},
		{name: "malformed CSV line, the next lines still checked", in: schoolHeader +
			"313601,松山\"國小,松山區,國小,\n313501,介壽國中,松山區,國中,9\n",
			want: []school.LineError{{2, `malformed CSV: bare " in non-quoted-field`}, {3, "cutoff must be a time of day as HH:MM, e.g. 08:30"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := school.ParseSchools(strings.NewReader(tt.in))
			if got != nil {
				t.Errorf("schools = %+v, want none from a bad file", got)
			}
			checkParseError(t, err, tt.want, len(tt.want))
		})
	}
}

// checkParseError checks that err is a *ParseError with the lines want, summed up on one line,
// with the EINVALID code.
func checkParseError(t *testing.T, err error, want []school.LineError, total int) {
	t.Helper()
	var perr *school.ParseError
	if !errors.As(err, &perr) {
		t.Fatalf("error = %v, want a *ParseError", err)
	}
	if diff := cmp.Diff(want, perr.Lines); diff != "" {
		t.Errorf("line errors (-want +got):\n%s", diff)
	}
	if perr.Total != total {
		t.Errorf("Total = %d, want %d", perr.Total, total)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("Error() = %q, want one line", err)
	}
	if code := ecardbot.ErrorCode(err); code != ecardbot.EINVALID {
		t.Errorf("code = %q, want EINVALID", code)
	}
}

func TestParseErrorIsCappedButCountsEveryLine(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(schoolHeader)
	for i := range 120 {
		fmt.Fprintf(&b, "%06d,x,松山區,小學,\n", i)
	}
	_, err := school.ParseSchools(strings.NewReader(b.String()))
	var perr *school.ParseError
	if !errors.As(err, &perr) {
		t.Fatalf("error = %v, want a *ParseError", err)
	}
	if len(perr.Lines) != school.MaxLineErrors || perr.Total != 120 {
		t.Errorf("listed %d of %d bad lines, want %d of 120", len(perr.Lines), perr.Total, school.MaxLineErrors)
	}
	if perr.Lines[49].Line != 51 {
		t.Errorf("last listed line = %d, want 51", perr.Lines[49].Line)
	}
	if want := "120 bad lines, the first: line 2: level must be 國小, 國中, 高中 or 高職"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

const rosterHeader = "student_no,name,birth_date,national_id,card_uid,grade,class\n"

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func idHash(id string) string {
	return ecardbot.KeyedHash(testSecret, ecardbot.PurposeNationalID, id)
}

func TestParseRoster(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []ecardbot.RosterEntry
	}{
		{name: "national, old and new resident IDs; card optional",
			in: rosterHeader +
				"1001,王小明,2017-03-04,A123456789,04A1B2C3,1,101\n" +
				"1002,林小美,2016-12-31,AA00000009,,2,201\n" +
				"1003,Tran Van An,2016-01-01,A800000014,0455,2,202\n",
			want: []ecardbot.RosterEntry{
				{Line: 2, StudentNo: "1001", Name: "王小明", BirthDate: "2017-03-04", NationalIDHash: idHash("A123456789"), CardUID: "04A1B2C3", Grade: "1", Class: "101"},
				{Line: 3, StudentNo: "1002", Name: "林小美", BirthDate: "2016-12-31", NationalIDHash: idHash("AA00000009"), Grade: "2", Class: "201"},
				{Line: 4, StudentNo: "1003", Name: "Tran Van An", BirthDate: "2016-01-01", NationalIDHash: idHash("A800000014"), CardUID: "0455", Grade: "2", Class: "202"},
			}},
		{name: "Excel: BOM, CRLF, any column order; IDs and cards normalised",
			in: "\uFEFFclass,grade,card_uid,national_id,birth_date,name,student_no\r\n" +
				"101,1, 04a1b2c3 , ａ１２３４５６７８９ ,2017-03-04,王小明,1001\r\n",
			want: []ecardbot.RosterEntry{
				{Line: 2, StudentNo: "1001", Name: "王小明", BirthDate: "2017-03-04", NationalIDHash: idHash("A123456789"), CardUID: "04A1B2C3", Grade: "1", Class: "101"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := school.ParseRoster(strings.NewReader(tt.in), testSecret)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRosterErrors(t *testing.T) {
	t.Parallel()
	const ok = "王小明,2017-03-04,A123456789,04A1,1,101\n" // a good line after its student_no
	tests := []struct {
		name string
		in   string
		want []school.LineError
	}{
		{name: "empty file", in: "",
			want: []school.LineError{{1, "empty file: the first line must be the header student_no,name,birth_date,national_id,card_uid,grade,class"}}},
		{name: "header only would deactivate everyone", in: rosterHeader,
			want: []school.LineError{{2, "no students after the header: importing an empty roster would deactivate every pupil"}}},
		{name: "school header given to the roster", in: schoolHeader + "313601,松山國小,松山區,國小,\n",
			want: []school.LineError{{1, `unknown column "code"; unknown column "district"; unknown column "level"; unknown column "cutoff"; ` +
				`missing column "student_no"; missing column "birth_date"; missing column "national_id"; missing column "card_uid"; ` +
				`missing column "grade"; missing column "class"; the header must be student_no,name,birth_date,national_id,card_uid,grade,class`}}},
		{name: "required fields", in: rosterHeader + ",,,,,,\n",
			want: []school.LineError{{2, "student_no is required; name is required; birth_date must be a date as YYYY-MM-DD; national_id is required"}}},
		{name: "bad birth dates", in: rosterHeader +
			"1,王小明,2017/03/04,A123456789,,1,101\n" +
			"2,王小明,2017-02-30,F131104093,,1,101\n" +
			"3,王小明,2017-3-4,O158238845,,1,101\n" +
			"4,王小明,2999-01-01,N116247806,,1,101\n" +
			"5,王小明,1899-12-31,L122544270,,1,101\n",
			want: []school.LineError{
				{2, "birth_date must be a date as YYYY-MM-DD"},
				{3, "birth_date must be a date as YYYY-MM-DD"},
				{4, "birth_date must be a date as YYYY-MM-DD"},
				{5, "birth_date must be a date in the past"},
				{6, "birth_date must be a date in the past"},
			}},
		{name: "bad national IDs", in: rosterHeader +
			"1,王小明,2017-03-04,A123456788,,1,101\n" +
			"2,王小明,2017-03-04,A12345678,,1,101\n" +
			"3,王小明,2017-03-04,AA00000000,,1,101\n",
			want: []school.LineError{
				{2, "national_id: ID number is not valid: please check each character"},
				{3, "national_id: ID number must be one letter followed by 9 characters, as printed on the ID card or residence permit"},
				{4, "national_id: ID number is not valid: please check each character"},
			}},
		{name: "repeated student_no, card_uid and national_id name both lines", in: rosterHeader +
			"1001," + ok +
			"1002,林小美,2016-12-31,F131104093,04a1,1,101\n" +
			"1001,陳大文,2016-12-31,a123456789,0999,1,101\n",
			want: []school.LineError{
				{3, "card_uid 04A1 repeats line 2"},
				{4, "student_no 1001 repeats line 2; national_id repeats line 2"},
			}},
		{name: "lengths", in: rosterHeader +
			strings.Repeat("9", 33) + "," + strings.Repeat("名", 101) + ",2017-03-04,A123456789," +
			strings.Repeat("F", 129) + "," + strings.Repeat("1", 33) + "," + strings.Repeat("1", 33) + "\n",
			want: []school.LineError{{2, "student_no is longer than 32 characters; name is longer than 100 characters; " +
				"card_uid is longer than 128 characters; grade is longer than 32 characters; class is longer than 32 characters"}}},
		{name: "line numbers count lines: a quoted line break", in: rosterHeader +
			"\n1001,\"王\n小明\",2017-03-04,A123456789,,1,101\n1002,林小美,2016-12-31,F131104093,,1,1\n1003,,2016-12-31,O158238845,,1,1\n",
			want: []school.LineError{{3, "a field contains control characters"}, {6, "name is required"}}},
		{name: "wrong field count and encoding", in: rosterHeader +
			"1001,王小明,2017-03-04,A123456789,,1\n" +
			"1002,\xa4\xfd\xa4\x70\xa9\xfa,2017-03-04,F131104093,,1,101\n",
			want: []school.LineError{{2, "has 6 fields, the header has 7"}, {3, `is not UTF-8 text (save the file as "CSV UTF-8")`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := school.ParseRoster(strings.NewReader(tt.in), testSecret)
			if got != nil {
				t.Errorf("entries = %+v, want none from a bad file", got)
			}
			checkParseError(t, err, tt.want, len(tt.want))
			// The clear national IDs of the file must not reach any message.
			for _, id := range []string{"A123456789", "A123456788", "A12345678", "AA00000000", "F131104093", "a123456789"} {
				if strings.Contains(err.Error(), id) || strings.Contains(fmt.Sprint(err.(*school.ParseError).Lines), id) {
					t.Errorf("an error quotes the national ID %s", id)
				}
			}
		})
	}
}

func TestParseRosterNeedsASecret(t *testing.T) {
	t.Parallel()
	_, err := school.ParseRoster(strings.NewReader(rosterHeader+"1001,王小明,2017-03-04,A123456789,,1,101\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "no secret key") {
		t.Errorf("error = %v, want one about the missing secret key", err)
	}
}
