package integration

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// A local Temporal server started again on its SQLite file forgets the
// cluster members of the process before it (which took other ports): ringpop
// tried to join those first, and on a busy machine that outlasted the join
// limit and the restarted server exited. The old process is SIGKILLed, as in
// a crash, so that it cannot remove its own members.
func TestRestartedTemporalForgetsTheMembersBeforeIt(t *testing.T) {
	onStack(t)
	bin := os.Getenv("FEEDPIPE_DEVTEMPORAL")
	if bin == "" {
		t.Fatal("FEEDPIPE_DEVTEMPORAL is not set (make test-integration sets it)")
	}
	dbFile := filepath.Join(t.TempDir(), "temporal.db")
	start := func() (*exec.Cmd, string) {
		t.Helper()
		cmd := exec.Command(bin, "-db", dbFile, "-ui-port", "-1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		line := make(chan string, 1)
		go func() {
			s, _ := bufio.NewReader(out).ReadString('\n')
			line <- s
		}()
		select {
		case l := <-line:
			var ready struct{ Address string }
			if err := json.Unmarshal([]byte(l), &ready); err != nil || ready.Address == "" {
				t.Fatalf("devtemporal's ready line %q: %v", l, err)
			}
			return cmd, ready.Address
		case <-time.After(3 * time.Minute):
			t.Fatal("devtemporal did not get ready in 3 minutes")
		}
		return nil, ""
	}
	members := func() map[int]bool {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+dbFile+"?_pragma=busy_timeout(10000)&mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query("SELECT rpc_port FROM cluster_membership")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		ports := map[int]bool{}
		for rows.Next() {
			var p int
			if err := rows.Scan(&p); err != nil {
				t.Fatal(err)
			}
			ports[p] = true
		}
		return ports
	}

	first, addr := start()
	before := members()
	if len(before) == 0 {
		t.Fatal("the first server recorded no cluster members")
	}
	first.Process.Kill()
	first.Wait()
	_, addr2 := start()
	after := members()
	for p := range before {
		if after[p] {
			t.Errorf("the restarted server (%s, was %s) still lists the dead process's member on port %d: %v", addr2, addr, p, after)
		}
	}
}
