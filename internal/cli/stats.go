package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cli/client"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

// statsEntry is one container's latest computed sample.
type statsEntry struct {
	id, name                 string
	cpu, mem, memLimit, memP float64
	netRx, netTx             float64
	blkR, blkW               float64
	pids                     uint64
	err                      error
	trunc                    bool
}

func (s statsEntry) Container() string { return s.name }
func (s statsEntry) Name() string {
	if s.err != nil {
		return "--"
	}
	return strings.TrimPrefix(s.name, "/")
}
func (s statsEntry) ID() string {
	if s.trunc {
		return shortID(s.id)
	}
	return s.id
}
func (s statsEntry) CPUPerc() string {
	if s.err != nil {
		return "--"
	}
	return fmt.Sprintf("%.2f%%", s.cpu)
}
func (s statsEntry) MemUsage() string {
	if s.err != nil {
		return "-- / --"
	}
	return bytesSize(s.mem) + " / " + bytesSize(s.memLimit)
}
func (s statsEntry) MemPerc() string {
	if s.err != nil {
		return "--"
	}
	return fmt.Sprintf("%.2f%%", s.memP)
}
func (s statsEntry) NetIO() string {
	if s.err != nil {
		return "--"
	}
	return humanSizePrec(s.netRx, 3) + " / " + humanSizePrec(s.netTx, 3)
}
func (s statsEntry) BlockIO() string {
	if s.err != nil {
		return "--"
	}
	return humanSizePrec(s.blkR, 3) + " / " + humanSizePrec(s.blkW, 3)
}
func (s statsEntry) PIDs() string {
	if s.err != nil {
		return "--"
	}
	return fmt.Sprint(s.pids)
}

var statsHeaders = map[string]string{"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME",
	"CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
	"BlockIO": "BLOCK I/O", "PIDs": "PIDS"}

const statsTable = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

// cpuPercent is docker's formula: the container's share of the host's CPU
// time between the two samples, scaled by the number of online CPUs.
func cpuPercent(pre, cur container.CPUStats) float64 {
	cpuDelta := float64(cur.CPUUsage.TotalUsage) - float64(pre.CPUUsage.TotalUsage)
	sysDelta := float64(cur.SystemUsage) - float64(pre.SystemUsage)
	online := float64(cur.OnlineCPUs)
	if online == 0 {
		online = float64(len(cur.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		return cpuDelta / sysDelta * online * 100
	}
	return 0
}

// memUsageNoCache subtracts the inactive page cache, as docker does
// (total_inactive_file on cgroup v1, inactive_file on v2).
func memUsageNoCache(m container.MemoryStats) float64 {
	if v, ok := m.Stats["total_inactive_file"]; ok && v < m.Usage {
		return float64(m.Usage - v)
	}
	if v := m.Stats["inactive_file"]; v < m.Usage {
		return float64(m.Usage - v)
	}
	return float64(m.Usage)
}

func computeStats(v *container.StatsResponse) statsEntry {
	e := statsEntry{id: v.ID, name: v.Name}
	e.cpu = cpuPercent(v.PreCPUStats, v.CPUStats)
	e.mem = memUsageNoCache(v.MemoryStats)
	e.memLimit = float64(v.MemoryStats.Limit)
	if e.memLimit != 0 {
		e.memP = e.mem / e.memLimit * 100
	}
	for _, n := range v.Networks {
		e.netRx += float64(n.RxBytes)
		e.netTx += float64(n.TxBytes)
	}
	for _, b := range v.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			e.blkR += float64(b.Value)
		case "write":
			e.blkW += float64(b.Value)
		}
	}
	e.pids = v.PidsStats.Current
	return e
}

func (c *CLI) newStatsCommand() *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runStats(cmd.Context(), args, all, noStream, noTrunc, format)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.StringVar(&format, "format", "", formatHelp)
	fl.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

// statsSet holds one collector per container, in display order.
type statsSet struct {
	mu      sync.Mutex
	order   []string
	entries map[string]*statsEntry
}

func (s *statsSet) rows() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := make([]any, 0, len(s.order))
	for _, id := range s.order {
		rows = append(rows, *s.entries[id])
	}
	return rows
}

func (s *statsSet) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, id)
	for i, o := range s.order {
		if o == id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

func (c *CLI) runStats(ctx context.Context, names []string, all, noStream, noTrunc bool, format string) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	set := &statsSet{entries: map[string]*statsEntry{}}
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	watchAll := len(names) == 0

	// collect streams one container's samples into its entry. Containers
	// that go away are dropped from the table when watching all of them.
	collect := func(id string) {
		set.mu.Lock()
		if _, ok := set.entries[id]; ok {
			set.mu.Unlock()
			return
		}
		set.entries[id] = &statsEntry{id: id, name: id, trunc: !noTrunc}
		set.order = append(set.order, id)
		set.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(err error) {
				if watchAll && !noStream {
					set.remove(id)
					return
				}
				set.mu.Lock()
				if e := set.entries[id]; e != nil {
					e.err = err
				}
				set.mu.Unlock()
				errMu.Lock()
				if firstErr == nil && !watchAll {
					firstErr = err
				}
				errMu.Unlock()
			}
			res, err := api.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: !noStream})
			if err != nil {
				fail(err)
				return
			}
			defer res.Body.Close()
			dec := json.NewDecoder(res.Body)
			for {
				var v container.StatsResponse
				if err := dec.Decode(&v); err != nil {
					// A named container that stops keeps its last row.
					if ctx.Err() == nil && (watchAll || !errors.Is(err, io.EOF)) {
						fail(err)
					}
					return
				}
				e := computeStats(&v)
				e.trunc = !noTrunc
				if e.id == "" {
					e.id = id
				}
				set.mu.Lock()
				if _, ok := set.entries[id]; ok {
					set.entries[id] = &e
				}
				set.mu.Unlock()
				if noStream {
					return
				}
			}
		}()
	}
	list := func() error {
		res, err := api.ContainerList(ctx, client.ContainerListOptions{All: all})
		if err != nil {
			return err
		}
		for _, ct := range res.Items {
			collect(ct.ID)
		}
		return nil
	}
	if watchAll {
		if err := list(); err != nil {
			return err
		}
	} else {
		for _, n := range names {
			collect(n)
		}
	}

	lf := listFormat{format: format, table: statsTable, headers: statsHeaders}
	if noStream {
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
		return lf.render(c.out, set.rows())
	}
	isTerm := c.outIsTerminal()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		var buf bytes.Buffer
		if isTerm {
			// Clear and home the cursor, then redraw the whole table.
			buf.WriteString("\033[2J\033[H")
		}
		if err := lf.render(&buf, set.rows()); err != nil {
			return err
		}
		_, _ = c.out.Write(buf.Bytes())
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
		errMu.Lock()
		err := firstErr
		errMu.Unlock()
		if err != nil {
			return err
		}
		// Pick up containers started since (docker follows events; a
		// list every two seconds costs the daemon about as little).
		if watchAll && n%4 == 3 {
			_ = list()
		}
	}
}
