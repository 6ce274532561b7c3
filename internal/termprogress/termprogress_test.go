package termprogress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTest(isTerminal bool, pipeEvery time.Duration) (*Line, *bytes.Buffer, *bytes.Buffer, *clock) {
	var stderr, pipe bytes.Buffer
	c := &clock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	l := New(&stderr, isTerminal, &pipe, pipeEvery)
	l.now, l.last = c.now, c.t
	return l, &stderr, &pipe, c
}

func TestTerminalRedrawsOneLine(t *testing.T) {
	l, stderr, pipe, c := newTest(true, 30*time.Second)
	l.Set("backfill: 10 listed")
	c.t = c.t.Add(10 * time.Millisecond)
	l.Set("backfill: 11 listed") // too soon: not drawn
	c.t = c.t.Add(200 * time.Millisecond)
	l.Set("b: 2")
	l.Clear()
	want := "\rbackfill: 10 listed" + "\rb: 2" + strings.Repeat(" ", 19-4) + "\r" + "    " + "\r"
	if stderr.String() != want {
		t.Errorf("terminal got %q\nwant %q", stderr.String(), want)
	}
	if pipe.Len() != 0 || !l.Terminal() {
		t.Errorf("a terminal line wrote to the pipe: %q", pipe.String())
	}
}

func TestPipeGetsALineEverySoOften(t *testing.T) {
	l, stderr, pipe, c := newTest(false, 30*time.Second)
	l.Set("1") // at the start: nothing yet
	c.t = c.t.Add(29 * time.Second)
	l.Set("2")
	c.t = c.t.Add(time.Second)
	l.Set("3") // 30 s: a line
	c.t = c.t.Add(10 * time.Second)
	l.Set("4")
	c.t = c.t.Add(20 * time.Second)
	l.Set("5\nx") // 30 s after the last line
	l.Clear()
	if pipe.String() != "3\n5 x\n" {
		t.Errorf("pipe got %q", pipe.String())
	}
	if stderr.Len() != 0 || l.Terminal() {
		t.Errorf("no terminal, yet stderr got %q", stderr.String())
	}
}

func TestPipeQuietWithoutInterval(t *testing.T) {
	l, stderr, pipe, c := newTest(false, 0)
	for range 5 {
		c.t = c.t.Add(time.Hour)
		l.Set("x")
	}
	l.Clear()
	if stderr.Len()+pipe.Len() != 0 {
		t.Errorf("wrote %q and %q", stderr.String(), pipe.String())
	}
	l = New(&bytes.Buffer{}, false, nil, time.Second)
	l.Set("no pipe writer: nothing, no panic")
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) || IsTerminal(nil) {
		t.Error("a file is no terminal")
	}
}
