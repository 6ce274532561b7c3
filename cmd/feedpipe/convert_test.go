package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// convert refuses to write over its input, by the same name or another.
func TestConvertRefusesOutputThatIsTheInput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "same.ndjson")
	writeFile(t, in, `{"a":1}`+"\n")
	link := filepath.Join(dir, "link.ndjson")
	if err := os.Link(in, link); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{in, link} {
		err := run([]string{"convert", in, out})
		if err == nil || !strings.Contains(err.Error(), "is the input file") {
			t.Errorf("convert %s %s: %v, want a refusal", in, out, err)
		}
	}
	if b, _ := os.ReadFile(in); string(b) != `{"a":1}`+"\n" {
		t.Errorf("the input changed: %q", b)
	}
}

// A run that fails leaves the earlier OUT and its rejects file as they
// were, and no temporary file; a run that completes replaces both, and
// removes an earlier rejects file when it rejected nothing.
func TestConvertOutputIsAtomicAndRejectsBelongToIt(t *testing.T) {
	dir := t.TempDir()
	good, bad, corrupt := filepath.Join(dir, "good.ndjson"), filepath.Join(dir, "bad.ndjson"), filepath.Join(dir, "corrupt.ndjson.gz")
	writeFile(t, good, `{"a":1}`+"\n"+`{"a":2}`+"\n")
	writeFile(t, bad, `{"a":1}`+"\n"+`{"a":"x"}`+"\n")
	writeFile(t, corrupt, "\x1f\x8b\x08\x00garbage")
	out := filepath.Join(dir, "out.parquet")
	rejects := out + ".rejects.ndjson"

	if err := run([]string{"convert", "-infer", "1", bad, out}); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(out)
	firstRejects, err := os.ReadFile(rejects)
	if err != nil || !strings.Contains(string(firstRejects), `"line":2`) {
		t.Fatalf("rejects after the bad feed: %q, %v", firstRejects, err)
	}
	if err := run([]string{"convert", corrupt, out}); err == nil {
		t.Fatal("a corrupt gzip converted")
	}
	if b, _ := os.ReadFile(out); string(b) != string(first) {
		t.Error("the failed run changed the earlier OUT")
	}
	if b, _ := os.ReadFile(rejects); string(b) != string(firstRejects) {
		t.Error("the failed run changed the earlier rejects file")
	}
	if err := run([]string{"convert", good, out}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rejects); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a clean run kept the earlier run's rejects file (%v)", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left a temporary file %s", e.Name())
		}
	}
}

func TestConvertFlags(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	writeFile(t, in, `{"a":1}`+"\n")
	schemaFile := filepath.Join(dir, "s.toml")
	writeFile(t, schemaFile, `columns = [{ name = "a", type = "int64" }]`+"\n")
	out := filepath.Join(dir, "out.parquet")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"convert", "-infer", "0", in, out}, "-infer 0"},
		{[]string{"convert", "-infer", "-5", in, out}, "-infer -5"},
		{[]string{"convert", "-schema", schemaFile, "-infer", "10", in, out}, "-infer and -schema"},
		// Issue 9, review 9: sizes that bound nothing are refused, flags
		// after the files are named as such, and an unusable -rejects path
		// fails at the start.
		{[]string{"convert", "-row-group-mb", "0", in, out}, "-row-group-mb 0: give the row group size bound in MiB"},
		{[]string{"convert", "-row-group-mb", "-1", in, out}, "-row-group-mb -1"},
		{[]string{"convert", "-row-group-rows", "-3", in, out}, "-row-group-rows -3"},
		{[]string{"convert", in, out, "-infer", "1"}, "-infer after IN OUT: flags go before IN OUT"},
		{[]string{"convert", in, "-infer", "1"}, "flags go before IN OUT"},
		{[]string{"convert", in}, "want IN and OUT, got 1 arguments"},
		{[]string{"convert", "-rejects", filepath.Join(dir, "no", "such", "dir", "r.ndjson"), in, out}, "does not exist; create it or give another path"},
		{[]string{"convert", "-rejects", dir, in, out}, "is a directory"},
		{[]string{"convert", in, "-"}, "convert: OUT is -: Parquet is written to a file"},
		{[]string{"convert", in, dir}, "convert: OUT " + dir + " is a directory; give a file name, e.g. " + filepath.Join(dir, "out.parquet")},
		{[]string{"convert", in, filepath.Join(dir, "nosuch") + "/"}, "nosuch/ ends in /: give a file name, e.g. " + filepath.Join(dir, "nosuch", "out.parquet")},
		{[]string{"convert", in, filepath.Join(in, "out.parquet")}, in + " is not a directory; give another path"},
		{[]string{"convert", in, filepath.Join(dir, "nosuch", "out.parquet")}, "its directory " + filepath.Join(dir, "nosuch") + " does not exist; create it or give another path"},
		{[]string{"convert", "-zstd-level", "0", in, out}, "-zstd-level 0: give 1 to 22 (default 1)"},
		{[]string{"convert", "-zstd-level", "23", in, out}, "-zstd-level 23: give 1 to 22"},
		{[]string{"convert", "-compression", "snappy", "-zstd-level", "3", in, out}, "-zstd-level with -compression snappy: a level is for zstd only"},
	} {
		if err := run(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error naming %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused run wrote %s: %v", out, err)
	}
	// A usable -rejects path, no rejects: no file, as before.
	rej := filepath.Join(dir, "r.ndjson")
	if err := run([]string{"convert", "-rejects", rej, in, out}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rej); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no rejects, yet %s: %v", rej, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("left behind: %v", entries)
	}
	// A level given with zstd, and snappy without one, convert.
	for _, args := range [][]string{{"-zstd-level", "19"}, {"-compression", "snappy"}} {
		if err := run(append(append([]string{"convert"}, args...), in, out)); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
	if err := run([]string{"convert", "-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp (main exits 0 on it)", err)
	}
	if err := run([]string{"-h"}); err != nil {
		t.Errorf("feedpipe -h: %v", err)
	}
}

// A -schema file that declares an empty name, or two names that differ only
// in case (one column in Snowflake), at any depth, fails before any input is
// read, naming the file and the columns; nothing is written.
func TestConvertSchemaWithCollidingOrEmptyNames(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "missing.ndjson") // never opened
	out := filepath.Join(dir, "out.parquet")
	for body, want := range map[string]string{
		`columns = [{ name = "userId", type = "int64" }, { name = "userID", type = "int64" }]`:                                     `column "userId" and column "userID" differ only in case`,
		`columns = [{ name = "a", type = "object", fields = [{ name = "x", type = "string" }, { name = "X", type = "string" }] }]`: `column "a.x" and column "a.X" differ only in case`,
		`columns = [{ name = "id", type = "int64" }, { name = "", type = "string" }]`:                                              `column 2 has no name`,
		`columns = [{ name = "a", type = "object", fields = [{ name = "", type = "string" }] }]`:                                   `column 1 of a has no name`,
	} {
		schemaFile := filepath.Join(dir, "s.toml")
		writeFile(t, schemaFile, body+"\n")
		err := run([]string{"convert", "-schema", schemaFile, in, out})
		if err == nil || !strings.Contains(err.Error(), "schema "+schemaFile+": ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s and %q", body, err, schemaFile, want)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: wrote %s", body, out)
		}
	}
}

// convertRejects converts in with -infer 1 into a file beside it and
// returns the lines of its rejects file, decoded.
func convertRejects(t *testing.T, in string) []map[string]any {
	t.Helper()
	out := filepath.Join(filepath.Dir(in), "out.parquet")
	if err := run([]string{"convert", "-infer", "1", in, out}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out + ".rejects.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %.100s", err, l)
		}
		got = append(got, r)
	}
	return got
}

// The rejects file keeps each rejected line's bytes: as a JSON string when
// they are UTF-8 (the format as it was), in raw_base64 when not (as the
// pipeline's quarantine objects do); a line cut to its first MiB says so
// (truncated, line_bytes), both for a line over the 16 MiB limit and for a
// long rejected one.
func TestConvertRejectsKeepRawBytes(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	notUTF8 := "{\"a\":\"\xff\xfe caf\xe9\"}"
	long := `{"a":"` + strings.Repeat("é", 1<<20) + `"}`     // 2 MiB, rejected (a is int64)
	tooLong := `{"a":"` + strings.Repeat("x", 17<<20) + `"}` // over the 16 MiB limit
	writeFile(t, in, strings.Join([]string{`{"a":1}`, notUTF8, long, tooLong, `{"a":"x"}`, `{"a":2}`}, "\n")+"\n")
	got := convertRejects(t, in)
	if len(got) != 4 {
		t.Fatalf("%d rejects, want 4", len(got))
	}
	raw64, _ := got[0]["raw_base64"].(string)
	if raw, _ := base64.StdEncoding.DecodeString(raw64); got[0]["line"] != 2.0 || string(raw) != notUTF8 || got[0]["raw"] != nil || got[0]["truncated"] != nil {
		t.Errorf("not UTF-8: %v", got[0])
	}
	if raw, _ := got[1]["raw"].(string); got[1]["line"] != 3.0 || got[1]["raw_base64"] != nil || got[1]["truncated"] != true ||
		got[1]["line_bytes"] != float64(len(long)) || !strings.HasPrefix(long, raw) || len(raw) < 1<<20-3 || len(raw) > 1<<20 {
		t.Errorf("long: line %v, %d bytes of raw, base64 %v, truncated %v, line_bytes %v", got[1]["line"], len(raw), got[1]["raw_base64"] != nil, got[1]["truncated"], got[1]["line_bytes"])
	}
	if raw, _ := got[2]["raw"].(string); got[2]["line"] != 4.0 || got[2]["truncated"] != true || got[2]["line_bytes"] != float64(len(tooLong)) ||
		!strings.HasPrefix(tooLong, raw) || len(raw) != 1<<20 || !strings.Contains(got[2]["reason"].(string), "line longer than") {
		t.Errorf("too long: line %v, %d bytes of raw, truncated %v, line_bytes %v, reason %v", got[2]["line"], len(raw), got[2]["truncated"], got[2]["line_bytes"], got[2]["reason"])
	}
	if got[3]["line"] != 5.0 || got[3]["raw"] != `{"a":"x"}` || len(got[3]) != 3 {
		t.Errorf("short UTF-8 line: %v, want line, reason and raw only (the format as it was)", got[3])
	}
}

// A line whose invalid UTF-8 lies beyond the first MiB kept has
// raw_base64 too, as the README says: raw is only ever a UTF-8 line
// (issue 9, review 10).
func TestConvertRejectsBase64WhenBadBytesAreBeyondTheFirstMiB(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	late := `{"a":"` + strings.Repeat("x", 1<<20+10) + "\xff" + `"}`
	writeFile(t, in, `{"a":1}`+"\n"+late+"\n")
	got := convertRejects(t, in)
	if len(got) != 1 {
		t.Fatalf("%d rejects, want 1", len(got))
	}
	r := got[0]
	raw64, _ := r["raw_base64"].(string)
	raw, _ := base64.StdEncoding.DecodeString(raw64)
	if r["raw"] != nil || len(raw) != 1<<20 || !strings.HasPrefix(late, string(raw)) || r["truncated"] != true || r["line_bytes"] != float64(len(late)) ||
		r["reason"] != fmt.Sprintf("not valid UTF-8 (at byte %d)", 1<<20+17) {
		t.Errorf("reject: raw %v, %d bytes of raw_base64, truncated %v, line_bytes %v, reason %v", r["raw"] != nil, len(raw), r["truncated"], r["line_bytes"], r["reason"])
	}
}

// Review 10, item 4: -rejects naming OUT (by the same path, another
// spelling, a hard or symbolic link) or IN is refused before anything is
// written: it destroyed OUT (with no rejects, the new OUT was removed as
// the earlier run's rejects file).
func TestConvertRefusesRejectsThatIsTheOutputOrInput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	writeFile(t, in, `{"a":1}`+"\n")
	out := filepath.Join(dir, "out.parquet")
	if err := run([]string{"convert", in, out}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(out)
	hard, sym := filepath.Join(dir, "hard.parquet"), filepath.Join(dir, "sym.parquet")
	if err := os.Link(out, hard); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(out, sym); err != nil {
		t.Fatal(err)
	}
	for _, rej := range []string{out, filepath.Join(dir, ".", "out.parquet"), hard, sym} {
		err := run([]string{"convert", "-rejects", rej, in, out})
		if err == nil || !strings.Contains(err.Error(), "is the output file") {
			t.Errorf("-rejects %s: %v, want a refusal", rej, err)
		}
	}
	if after, err := os.ReadFile(out); err != nil || string(after) != string(before) {
		t.Errorf("OUT changed or removed: %v", err)
	}
	// OUT not there yet: the same path is still refused.
	fresh := filepath.Join(dir, "fresh.parquet")
	if err := run([]string{"convert", "-rejects", fresh, in, fresh}); err == nil || !strings.Contains(err.Error(), "is the output file") {
		t.Errorf("-rejects = OUT (new): %v", err)
	}
	inLink := filepath.Join(dir, "in-link.ndjson")
	if err := os.Link(in, inLink); err != nil {
		t.Fatal(err)
	}
	for _, rej := range []string{in, inLink} {
		if err := run([]string{"convert", "-rejects", rej, in, filepath.Join(dir, "o2.parquet")}); err == nil || !strings.Contains(err.Error(), "is the input file") {
			t.Errorf("-rejects %s (IN): %v", rej, err)
		}
	}
	if b, _ := os.ReadFile(in); string(b) != `{"a":1}`+"\n" {
		t.Errorf("the input changed: %q", b)
	}
}

// -plain-integers writes the integer pages PLAIN; without it, ids that
// count up are delta-encoded. The rows are the same.
func TestConvertPlainIntegers(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, `{"id":%d,"name":"n%d"}`+"\n", i, i%7)
	}
	writeFile(t, in, b.String())
	var sums []int64
	for _, c := range []struct {
		flags     []string
		want, not format.Encoding
	}{{nil, format.DeltaBinaryPacked, format.Plain}, {[]string{"-plain-integers"}, format.Plain, format.DeltaBinaryPacked}} {
		out := filepath.Join(dir, "out.parquet")
		if err := run(append(append([]string{"convert"}, c.flags...), in, out)); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		for _, cc := range pf.Metadata().RowGroups[0].Columns {
			if encs := cc.MetaData.Encoding; cc.MetaData.PathInSchema[0] == "id" && (!slices.Contains(encs, c.want) || slices.Contains(encs, c.not)) {
				t.Errorf("%q: id encodings %v, want %v and not %v", c.flags, encs, c.want, c.not)
			}
		}
		rows, err := parquet.Read[struct {
			ID int64 `parquet:"id"`
		}](f, st.Size())
		f.Close()
		if err != nil || len(rows) != 5000 {
			t.Fatalf("%q: read %d rows, %v", c.flags, len(rows), err)
		}
		var sum int64
		for _, r := range rows {
			sum += r.ID
		}
		sums = append(sums, sum)
	}
	if sums[0] != 4999*5000/2 || sums[1] != sums[0] {
		t.Errorf("sums of id %v, want %d twice", sums, 4999*5000/2)
	}
}
