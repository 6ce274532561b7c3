// Package termprogress shows the progress of long CLI work: on a terminal,
// one line redrawn in place on stderr; in a pipe or a file, nothing, or at
// most one plain line every so often, so that logs stay readable.
package termprogress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	return f != nil && term.IsTerminal(int(f.Fd()))
}

// Line is a progress line. Its methods are safe for concurrent use.
type Line struct {
	mu sync.Mutex
	// tty receives the redrawn line; nil when stderr is no terminal.
	tty io.Writer
	// pipe receives a plain line at most every pipeEvery when there is no
	// terminal; nil (or pipeEvery 0): nothing.
	pipe      io.Writer
	pipeEvery time.Duration
	// redrawEvery bounds redraws on a terminal.
	redrawEvery time.Duration
	now         func() time.Time
	last        time.Time // last write
	shown       int       // width of what is on the terminal's line
	pending     string    // the newest text not yet written
}

// ForStderr is a Line that redraws on stderr when stderr is a terminal, and
// otherwise writes a line to pipe at most every pipeEvery (pipe nil or
// pipeEvery 0: nothing).
func ForStderr(pipe io.Writer, pipeEvery time.Duration) *Line {
	return New(os.Stderr, IsTerminal(os.Stderr), pipe, pipeEvery)
}

// New is a Line on stderr, which is a terminal or not as isTerminal says.
func New(stderr io.Writer, isTerminal bool, pipe io.Writer, pipeEvery time.Duration) *Line {
	l := &Line{pipe: pipe, pipeEvery: pipeEvery, redrawEvery: 100 * time.Millisecond, now: time.Now}
	if isTerminal {
		l.tty = stderr
	}
	l.last = l.now()
	return l
}

// Terminal reports whether the line is redrawn on a terminal.
func (l *Line) Terminal() bool { return l.tty != nil }

// Set shows text (one line; a newline in it is replaced by a space): on a
// terminal it replaces the line shown, at most every 100 ms; in a pipe it is
// written as a line if pipeEvery has passed since the last one (or since
// the start).
func (l *Line) Set(text string) {
	text = strings.ReplaceAll(text, "\n", " ")
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	switch {
	case l.tty != nil:
		l.pending = text
		if now.Sub(l.last) >= l.redrawEvery || l.shown == 0 {
			l.redraw(now)
		}
	case l.pipe != nil && l.pipeEvery > 0:
		if now.Sub(l.last) >= l.pipeEvery {
			fmt.Fprintln(l.pipe, text)
			l.last = now
		}
	}
}

// redraw writes the pending text over the line shown; l.mu is held.
func (l *Line) redraw(now time.Time) {
	pad := ""
	if n := len([]rune(l.pending)); n < l.shown {
		pad = strings.Repeat(" ", l.shown-n)
	}
	fmt.Fprint(l.tty, "\r"+l.pending+pad)
	l.shown = len([]rune(l.pending))
	l.last = now
}

// Clear removes the line from the terminal (before other output, or at the
// end); in a pipe it does nothing.
func (l *Line) Clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tty != nil && l.shown > 0 {
		fmt.Fprint(l.tty, "\r"+strings.Repeat(" ", l.shown)+"\r")
		l.shown = 0
	}
	l.pending = ""
}
