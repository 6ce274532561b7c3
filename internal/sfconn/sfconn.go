// Package sfconn runs Snowflake statements so that a lost session does not
// poison the connection pool. database/sql keeps a connection whose server
// session is gone (Snowflake's or fakesnow's restart, an expired token): each
// statement on it then fails the same way. Do closes such a connection
// instead of returning it to the pool, so the next statement logs in again.
package sfconn

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"

	"github.com/snowflakedb/gosnowflake"
)

// Do runs fn on one connection of db. When fn fails with a connection
// exception (SQLSTATE class 08), the connection is discarded; the error is
// returned either way, for the caller to retry.
func Do(ctx context.Context, db *sql.DB, fn func(*sql.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = fn(conn)
	if ConnectionLost(err) {
		// Raw returning driver.ErrBadConn makes database/sql close the
		// connection rather than pool it.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

// ConnectionLost reports whether err is a Snowflake connection exception
// (SQLSTATE 08xxx), such as a request the server refused because it does
// not know the session.
func ConnectionLost(err error) bool {
	var se *gosnowflake.SnowflakeError
	return errors.As(err, &se) && strings.HasPrefix(se.SQLState, "08")
}
