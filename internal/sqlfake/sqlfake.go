// Package sqlfake is a database/sql driver for unit tests that answers each
// statement with rows a test function chooses by the statement's text, and
// records the statements. Tests of code that talks to Snowflake use it with
// the result shapes Snowflake documents, where the local emulator has none.
package sqlfake

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"sync"
)

// Answer is what the fake returns for one statement.
type Answer struct {
	Columns []string
	Rows    [][]driver.Value
	Err     error
}

// DB is a fake database.
type DB struct {
	mu     sync.Mutex
	calls  []Call
	answer func(query string, args []driver.NamedValue) Answer
}

// Call is one statement run, with its bound arguments.
type Call struct {
	Query string
	Args  []any
}

// Open returns a *sql.DB whose statements answer answers.
func Open(answer func(query string, args []driver.NamedValue) Answer) (*sql.DB, *DB) {
	f := &DB{answer: answer}
	return sql.OpenDB(f), f
}

// Queries are the statements run so far, in order.
func (f *DB) Queries() []string {
	var out []string
	for _, c := range f.Calls() {
		out = append(out, c.Query)
	}
	return out
}

// Calls are the statements run so far with their arguments, in order.
func (f *DB) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Connect implements driver.Connector.
func (f *DB) Connect(context.Context) (driver.Conn, error) { return conn{f}, nil }

// Driver implements driver.Connector.
func (f *DB) Driver() driver.Driver { return nil }

type conn struct{ f *DB }

func (c conn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("sqlfake: prepare is not faked")
}
func (c conn) Close() error { return nil }
func (c conn) Begin() (driver.Tx, error) {
	return nil, errors.New("sqlfake: transactions are not faked")
}

// QueryContext implements driver.QueryerContext.
func (c conn) QueryContext(_ context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	call := Call{Query: q}
	for _, a := range args {
		call.Args = append(call.Args, a.Value)
	}
	c.f.mu.Lock()
	c.f.calls = append(c.f.calls, call)
	c.f.mu.Unlock()
	a := c.f.answer(q, args)
	if a.Err != nil {
		return nil, a.Err
	}
	return &rows{a: a}, nil
}

type rows struct {
	a Answer
	i int
}

func (r *rows) Columns() []string { return r.a.Columns }
func (r *rows) Close() error      { return nil }
func (r *rows) Next(dest []driver.Value) error {
	if r.i >= len(r.a.Rows) {
		return io.EOF
	}
	copy(dest, r.a.Rows[r.i])
	r.i++
	return nil
}
