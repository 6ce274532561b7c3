package parquetconv

import "sync"

// crew runs the jobs of the groups of columns on a few workers. A group's
// jobs run one at a time, in the order sent (a column's pages depend on the
// values before them); any idle worker takes any group that has a job
// waiting. Groups outnumber workers, so that no worker idles while another
// has a backlog: with one fixed group per worker, balanced by the size of
// the values, one of two workers did 41 % more work than the other on the
// bench feed (compressing text costs more per byte than copying numbers),
// and the pipeline waited for it.
type crew struct {
	mu     sync.Mutex
	wake   sync.Cond
	queues [][]job // each group's jobs not yet done; the first may be running
	busy   []bool  // a worker runs the group's first job
	ready  []int   // groups with a job waiting and none running, oldest first
	closed bool
	done   sync.WaitGroup
}

// newCrew starts workers running the jobs of groups groups with run, each
// worker with a scratch of its own.
func newCrew(groups, workers int, run func(group int, j job, sc *scratch)) *crew {
	c := &crew{queues: make([][]job, groups), busy: make([]bool, groups)}
	c.wake.L = &c.mu
	for range workers {
		c.done.Go(func() {
			var sc scratch
			c.mu.Lock()
			defer c.mu.Unlock()
			for {
				for len(c.ready) == 0 && !c.closed {
					c.wake.Wait()
				}
				if len(c.ready) == 0 {
					return // closed, and the groups still busy have their workers
				}
				g := c.ready[0]
				c.ready = c.ready[1:]
				c.busy[g] = true
				// A worker goes on with its group while the group has jobs:
				// the columns' open pages stay in its core's caches.
				for len(c.queues[g]) > 0 {
					j := c.queues[g][0]
					c.mu.Unlock()
					run(g, j, &sc)
					c.mu.Lock()
					c.queues[g][0] = job{} // no hold on the rows
					c.queues[g] = c.queues[g][1:]
				}
				c.busy[g] = false
			}
		})
	}
	return c
}

// send queues j for every group.
func (c *crew) send(j job) {
	c.mu.Lock()
	for g := range c.queues {
		c.queues[g] = append(c.queues[g], j)
		if len(c.queues[g]) == 1 && !c.busy[g] {
			c.ready = append(c.ready, g)
		}
	}
	c.mu.Unlock()
	c.wake.Broadcast()
}

// stop ends the workers once every job sent is done.
func (c *crew) stop() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wake.Broadcast()
	c.done.Wait()
}
