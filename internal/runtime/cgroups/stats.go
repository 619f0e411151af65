package cgroups

import (
	"strconv"
	"strings"
)

// Stats is one sample of a cgroup's counters, shaped like the Docker
// Engine API's stats so the daemon maps it field by field. On v2, fields
// the kernel does not have stay zero (PerCPU, MaxUsage before 5.19, Failcnt)
// and Memory.Stats holds v2's memory.stat keys (anon, file, inactive_file…):
// docker computes "usage without page cache" as Usage - total_inactive_file
// on v1 and Usage - inactive_file on v2.
type Stats struct {
	CPU     CPUStats
	Memory  MemoryStats
	Pids    PidsStats
	Blkio   BlkioStats
	Hugetlb map[string]HugetlbStats // by page size, "2MB"
}

type CPUStats struct {
	Usage      CPUUsage
	Throttling ThrottlingData
}

// CPUUsage is in nanoseconds.
type CPUUsage struct {
	Total  uint64
	PerCPU []uint64
	User   uint64
	System uint64
}

type ThrottlingData struct {
	Periods          uint64
	ThrottledPeriods uint64
	ThrottledTime    uint64 // ns
}

type MemoryStats struct {
	Usage    uint64
	MaxUsage uint64
	Limit    uint64 // math.MaxUint64-ish (v1) or 0 (v2 "max") when unlimited; see HasLimit
	HasLimit bool
	Failcnt  uint64
	Swap     MemoryData // v1: memory+swap (memsw); v2: swap alone
	// Stats is memory.stat verbatim.
	Stats        map[string]uint64
	UseHierarchy bool
}

type MemoryData struct {
	Usage    uint64
	MaxUsage uint64
	Limit    uint64
	Failcnt  uint64
}

type PidsStats struct {
	Current uint64
	Limit   uint64 // 0: unlimited
}

// BlkioEntry is one line of blkio.*_recursive; Op is "Read", "Write",
// "Sync", "Async", "Discard" or "Total" (v2's io.stat is translated to Read,
// Write and Discard).
type BlkioEntry struct {
	Major, Minor uint64
	Op           string
	Value        uint64
}

type BlkioStats struct {
	IoServiceBytesRecursive []BlkioEntry
	IoServicedRecursive     []BlkioEntry
}

type HugetlbStats struct {
	Usage    uint64
	MaxUsage uint64
	Failcnt  uint64
}

// parseKV parses "key value" lines (memory.stat, cpu.stat, memory.events).
func parseKV(s string) map[string]uint64 {
	m := make(map[string]uint64, 64)
	for len(s) > 0 {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		sp := strings.IndexByte(line, ' ')
		if sp <= 0 {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(line[sp+1:]), 10, 64)
		if err != nil {
			continue
		}
		m[line[:sp]] = v
	}
	return m
}

// parseUint parses a single-value file; "max" is returned as 0, false.
func parseUint(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	if s == "max" || s == "" {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// memory.limit_in_bytes can be negative-looking on some kernels; treat as unlimited.
		return 0, false
	}
	return v, true
}

// parseBlkioV1 parses "8:0 Read 4096" lines, skipping the "Total N" footer.
func parseBlkioV1(s string) []BlkioEntry {
	var out []BlkioEntry
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		maj, min, ok := parseDev(f[0])
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, BlkioEntry{Major: maj, Minor: min, Op: f[1], Value: v})
	}
	return out
}

// parseIOStatV2 translates io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4
// dbytes=0 dios=0") into v1's shape: bytes and ios per Read/Write/Discard
// plus a Total, as docker's v2 stats do.
func parseIOStatV2(s string) (bytes, ios []BlkioEntry) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := parseDev(f[0])
		if !ok {
			continue
		}
		var b, n [3]uint64
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			x, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				b[0] = x
			case "wbytes":
				b[1] = x
			case "dbytes":
				b[2] = x
			case "rios":
				n[0] = x
			case "wios":
				n[1] = x
			case "dios":
				n[2] = x
			}
		}
		for i, op := range [3]string{"Read", "Write", "Discard"} {
			bytes = append(bytes, BlkioEntry{Major: maj, Minor: min, Op: op, Value: b[i]})
			ios = append(ios, BlkioEntry{Major: maj, Minor: min, Op: op, Value: n[i]})
		}
		bytes = append(bytes, BlkioEntry{Major: maj, Minor: min, Op: "Total", Value: b[0] + b[1] + b[2]})
		ios = append(ios, BlkioEntry{Major: maj, Minor: min, Op: "Total", Value: n[0] + n[1] + n[2]})
	}
	return bytes, ios
}

func parseDev(s string) (uint64, uint64, bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, false
	}
	maj, err1 := strconv.ParseUint(a, 10, 64)
	min, err2 := strconv.ParseUint(b, 10, 64)
	return maj, min, err1 == nil && err2 == nil
}

// parseUints parses whitespace-separated numbers (cpuacct.usage_percpu).
func parseUints(s string) []uint64 {
	f := strings.Fields(s)
	out := make([]uint64, 0, len(f))
	for _, x := range f {
		v, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, v)
	}
	return out
}
