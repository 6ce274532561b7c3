package parquetconv

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/internal/schema"
)

// numbered is a job that carries k, for the tests' run functions.
func numbered(k int) job { return job{leaves: []schema.Leaf{{Int64: []int64{int64(k)}}}} }

func number(j job) int { return int(j.leaves[0].Int64[0]) }

// A group's jobs run one at a time and in the order sent, whichever worker
// takes them; every job runs once.
func TestCrewRunsEachGroupInOrder(t *testing.T) {
	const groups, jobs = 7, 3000
	var running [groups]atomic.Int32
	var mu sync.Mutex
	seen := make([][]int, groups)
	c := newCrew(groups, 3, func(g int, j job, _ *scratch) {
		if running[g].Add(1) != 1 {
			t.Errorf("group %d: two jobs at once", g)
		}
		mu.Lock()
		seen[g] = append(seen[g], number(j))
		mu.Unlock()
		running[g].Add(-1)
	})
	for k := range jobs {
		c.send(numbered(k))
	}
	c.stop()
	for g := range groups {
		if len(seen[g]) != jobs {
			t.Fatalf("group %d ran %d jobs, want %d", g, len(seen[g]), jobs)
		}
		for k, n := range seen[g] {
			if n != k {
				t.Fatalf("group %d ran job %d as its job %d", g, n, k)
			}
		}
	}
}

// While one group's job takes long, the other workers run every other
// group's jobs: no group waits for a worker that is busy elsewhere.
func TestCrewIdleWorkersTakeOtherGroups(t *testing.T) {
	const groups, jobs = 6, 200
	release := make(chan struct{})
	var done [groups]atomic.Int32
	c := newCrew(groups, 2, func(g int, j job, _ *scratch) {
		if g == 0 && number(j) == 0 {
			<-release // group 0's first job holds its worker
		}
		done[g].Add(1)
	})
	for k := range jobs {
		c.send(numbered(k))
	}
	deadline := time.Now().Add(30 * time.Second)
	for g := 1; g < groups; g++ {
		for done[g].Load() < jobs {
			if time.Now().After(deadline) {
				n := done[g].Load()
				close(release)
				c.stop()
				t.Fatalf("group %d ran %d of %d jobs while group 0 held a worker", g, n, jobs)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if n := done[0].Load(); n != 0 {
		t.Fatalf("group 0 ran %d jobs past the one that holds it", n)
	}
	close(release)
	c.stop()
	if n := done[0].Load(); n != jobs {
		t.Fatalf("group 0 ran %d jobs, want %d", n, jobs)
	}
}
