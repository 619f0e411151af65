package seccomp

import (
	"fmt"
	"slices"
	"sort"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The emitted filter (every path ends in a RET; A is the accumulator):
//
//	ld  [arch]                          seccomp_data.arch
//	jeq AUDIT_ARCH_X86_64 → X86_64      one test per listed audit arch
//	jeq AUDIT_ARCH_I386   → I386
//	ret BADARCH                         libseccomp's default: SCMP_ACT_KILL
//	X86_64:
//	ld  [nr]
//	<binary search over nr intervals>   x86_64 owns nr < 0x40000000, x32 the rest
//	I386:
//	ld  [nr]
//	<binary search over nr intervals>
//
// The nr space of each audit arch is cut into intervals, each with one
// outcome: a constant action (default, an unconditional rule, ENOSYS for
// numbers past the profile's highest, bad-arch for an unlisted ABI) or the
// argument checks of one syscall. Adjacent intervals with the same constant
// action are merged: docker's profile becomes ~160 intervals for
// AUDIT_ARCH_X86_64 (x86_64 and x32) and ~120 for i386, searched in 8 or so
// comparisons, where libseccomp (runc, crun) walks a linear chain of one
// comparison per syscall (path_test.go measures both). Leaves with a constant
// outcome jump to a RET shared by their subtree (see retPool).
//
// A syscall's argument checks are its conditional rules in profile order,
// each a conjunction of comparisons; the first rule whose comparisons all hold
// returns its action, else the default. (An unconditional rule makes the
// syscall a constant outcome instead.)
//
//	ld [args[i].hi]; jxx hi → ...; ld [args[i].lo]; jxx lo → ...   (64-bit)
//	ret ACTION
//	next rule ...
//	ret FALLBACK

// seccomp_data offsets (little endian: the low half of an argument first).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

const (
	retKillThread  = unix.SECCOMP_RET_KILL_THREAD
	retKillProcess = unix.SECCOMP_RET_KILL_PROCESS
	retTrap        = unix.SECCOMP_RET_TRAP
	retErrno       = unix.SECCOMP_RET_ERRNO
	retTrace       = unix.SECCOMP_RET_TRACE
	retNotify      = unix.SECCOMP_RET_USER_NOTIF
	retLog         = unix.SECCOMP_RET_LOG
	retAllow       = unix.SECCOMP_RET_ALLOW

	// badArchRet is what a syscall from an unlisted ABI gets: libseccomp's
	// default bad-arch action, SCMP_ACT_KILL (kill the thread).
	badArchRet = retKillThread
)

type cond struct {
	arg       uint
	op        specs.LinuxSeccompOperator
	val, val2 uint64
}

type rule struct {
	ret   uint32
	conds []cond // ANDed
}

// sysRules is everything the profile says about one syscall number.
type sysRules struct {
	conditional []rule
	fallback    uint32
	uncond      bool // fallback comes from an unconditional rule
	bits32      bool
}

type interval struct {
	start uint32 // first nr; the interval ends where the next starts
	ret   uint32 // outcome when rules is nil
	rules *sysRules
}

// compiled is the profile after validation, before code generation.
type compiled struct {
	flags    uint32
	listener bool
	// arches in test order, each with its nr intervals.
	arches     []archPlan
	retDefault uint32
	// used holds the action class (SECCOMP_RET_ACTION_FULL bits) of
	// every action the profile returns.
	used map[uint32]bool
}

type archPlan struct {
	audit     uint32
	intervals []interval
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("seccomp: "+format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// actionRet maps an OCI action (+ errnoRet) to a SECCOMP_RET_* value.
func actionRet(a specs.LinuxSeccompAction, errnoRet *uint, what string) (uint32, error) {
	data := uint32(unix.EPERM) // runc's default for ERRNO and TRACE
	if errnoRet != nil {
		if a != specs.ActErrno && a != specs.ActTrace {
			return 0, invalid("%s: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s", what, a)
		}
		if *errnoRet > 0xffff {
			return 0, invalid("%s: errnoRet %d does not fit in 16 bits", what, *errnoRet)
		}
		data = uint32(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return retKillThread, nil
	case specs.ActKillProcess:
		return retKillProcess, nil
	case specs.ActTrap:
		return retTrap, nil
	case specs.ActErrno:
		return retErrno | data, nil
	case specs.ActTrace:
		return retTrace | data, nil
	case specs.ActAllow:
		return retAllow, nil
	case specs.ActLog:
		return retLog, nil
	case specs.ActNotify:
		return retNotify, nil
	case "":
		return 0, invalid("%s: missing action", what)
	}
	return 0, invalid("%s: unknown action %q", what, a)
}

var knownOps = map[specs.LinuxSeccompOperator]bool{
	specs.OpNotEqual: true, specs.OpLessThan: true, specs.OpLessEqual: true, specs.OpEqualTo: true,
	specs.OpGreaterEqual: true, specs.OpGreaterThan: true, specs.OpMaskedEqual: true,
}

const (
	flagTSYNC            = unix.SECCOMP_FILTER_FLAG_TSYNC
	flagLog              = unix.SECCOMP_FILTER_FLAG_LOG
	flagSpecAllow        = unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
	flagNewListener      = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	flagTSYNCESRCH       = unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	flagWaitKillableRecv = unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
)

var flagByName = map[specs.LinuxSeccompFlag]uint32{
	"SECCOMP_FILTER_FLAG_TSYNC":            flagTSYNC,
	specs.LinuxSeccompFlagLog:              flagLog,
	specs.LinuxSeccompFlagSpecAllow:        flagSpecAllow,
	specs.LinuxSeccompFlagWaitKillableRecv: flagWaitKillableRecv,
}

// nativeABI is the ABI used when the profile lists no architectures.
func nativeABI() (*abi, error) {
	switch goarch {
	case "amd64":
		return abiX86_64, nil
	case "386":
		return abiX86, nil
	}
	return nil, fmt.Errorf("seccomp: no syscall tables for GOARCH %s: %w", goarch, errdefs.ErrNotImplemented)
}

// plan validates s and lays out the decision for every (arch, nr).
func plan(s *specs.LinuxSeccomp) (*compiled, error) {
	c := &compiled{used: map[uint32]bool{}}
	if s.DefaultAction == specs.ActNotify {
		return nil, invalid("SCMP_ACT_NOTIFY cannot be the default action (the runtime itself would block)")
	}
	var err error
	c.retDefault, err = actionRet(s.DefaultAction, s.DefaultErrnoRet, "defaultAction")
	if err != nil {
		return nil, err
	}
	c.used[c.retDefault&unix.SECCOMP_RET_ACTION_FULL] = true

	for _, f := range s.Flags {
		v, ok := flagByName[f]
		if !ok {
			return nil, invalid("unknown flag %q", f)
		}
		c.flags |= v
	}

	// The native ABI is always in the filter: runc adds the listed
	// architectures to a libseccomp filter that starts with the native one
	// and never removes it.
	native, err := nativeABI()
	if err != nil {
		return nil, err
	}
	abis := []*abi{native}
	for _, a := range s.Architectures {
		if x, ok := supportedABIs[a]; ok {
			if !slices.Contains(abis, x) {
				abis = append(abis, x)
			}
			continue
		}
		if !foreignArches[a] {
			return nil, invalid("unknown architecture %q", a)
		}
	}

	// Per ABI: syscall nr → rules, in profile order.
	perABI := make([]map[uint32]*sysRules, len(abis))
	maxRef := make([]int64, len(abis)) // highest nr any rule names, -1: none
	for i := range perABI {
		perABI[i] = map[uint32]*sysRules{}
		maxRef[i] = -1
	}
	for si, sc := range s.Syscalls {
		what := fmt.Sprintf("syscalls[%d]", si)
		if len(sc.Names) == 0 {
			return nil, invalid("%s: no syscall names", what)
		}
		ret, err := actionRet(sc.Action, sc.ErrnoRet, what)
		if err != nil {
			return nil, err
		}
		c.used[ret&unix.SECCOMP_RET_ACTION_FULL] = true
		if ret == retNotify {
			c.listener = true
			// As runc: the runtime itself writes after loading the
			// filter, and would wait on a listener nobody serves yet.
			if slices.Contains(sc.Names, "write") {
				return nil, invalid("%s: SCMP_ACT_NOTIFY cannot be used for the write syscall", what)
			}
		}
		var rules []rule
		perIndex := map[uint]int{}
		for ai, a := range sc.Args {
			if a.Index >= 6 {
				return nil, invalid("%s.args[%d]: index %d out of range (0-5)", what, ai, a.Index)
			}
			if !knownOps[a.Op] {
				return nil, invalid("%s.args[%d]: unknown operator %q", what, ai, a.Op)
			}
			perIndex[a.Index]++
		}
		if len(sc.Args) > 0 {
			conds := make([]cond, len(sc.Args))
			for ai, a := range sc.Args {
				conds[ai] = cond{arg: a.Index, op: a.Op, val: a.Value, val2: a.ValueTwo}
			}
			if len(perIndex) == len(sc.Args) {
				rules = []rule{{ret: ret, conds: conds}}
			} else {
				// As runc does: when one argument is compared more than
				// once, each comparison becomes a rule of its own (ORed).
				for _, cd := range conds {
					rules = append(rules, rule{ret: ret, conds: []cond{cd}})
				}
			}
		}
		for _, name := range sc.Names {
			for i, ab := range abis {
				nr, ok := ab.table.lookup(name)
				if !ok {
					continue // unknown on this ABI: skipped, as runc does
				}
				maxRef[i] = max(maxRef[i], int64(nr))
				// A rule with the default action changes nothing;
				// runc drops it (libseccomp refuses it), so do we.
				if ret == c.retDefault {
					continue
				}
				r := perABI[i][nr]
				if r == nil {
					r = &sysRules{fallback: c.retDefault, bits32: ab.bits32}
					perABI[i][nr] = r
				}
				switch {
				case r.uncond:
					// libseccomp keeps the first unconditional
					// rule and ignores anything added after it.
				case rules == nil:
					// An unconditional rule overrides the
					// conditional ones, as in libseccomp.
					r.fallback, r.uncond, r.conditional = ret, true, nil
				default:
					r.conditional = append(r.conditional, rules...)
				}
			}
		}
	}

	// Syscalls numbered past the highest one the profile names get ENOSYS
	// instead of a deny-by-default action, as runc does (patchbpf): a
	// profile older than the kernel then lets libc fall back from a new
	// syscall (clone3, faccessat2...) rather than fail with EPERM. Like
	// runc, not when the default allows, logs or traces.
	enosys := c.retDefault&unix.SECCOMP_RET_ACTION_FULL != retAllow &&
		c.retDefault != retLog && c.retDefault&unix.SECCOMP_RET_ACTION_FULL != retTrace

	byAudit := map[uint32]int{}
	for i, ab := range abis {
		ai, ok := byAudit[ab.audit]
		if !ok {
			// Start with the whole nr space as bad-arch; each ABI
			// sharing this audit value carves out its own range.
			c.arches = append(c.arches, archPlan{audit: ab.audit, intervals: []interval{{start: 0, ret: badArchRet}}})
			ai = len(c.arches) - 1
			byAudit[ab.audit] = ai
		}
		ap := &c.arches[ai]
		nrs := make([]uint32, 0, len(perABI[i]))
		for nr := range perABI[i] {
			nrs = append(nrs, nr)
		}
		sort.Slice(nrs, func(a, b int) bool { return nrs[a] < nrs[b] })
		iv := make([]interval, 0, 2*len(nrs)+3)
		add := func(start uint32, ret uint32, r *sysRules) {
			iv = append(iv, interval{start: start, ret: ret, rules: r})
		}
		add(ab.nrLo, c.retDefault, nil)
		for _, nr := range nrs {
			r := perABI[i][nr]
			if len(r.conditional) == 0 {
				add(nr, r.fallback, nil)
			} else {
				add(nr, 0, r)
			}
			if nr < ab.nrHi {
				add(nr+1, c.retDefault, nil)
			}
		}
		if enosys && maxRef[i] >= 0 && uint32(maxRef[i]) < ab.nrHi {
			add(uint32(maxRef[i])+1, retErrno|uint32(unix.ENOSYS), nil)
		}
		ap.intervals = overlay(ap.intervals, iv, ab.nrLo, ab.nrHi)
	}
	// nr -1 on x86_64 is not an x32 syscall: libseccomp lets it reach the
	// default action (ptrace tracers use it to skip a syscall).
	for i := range c.arches {
		ap := &c.arches[i]
		if ap.audit == unix.AUDIT_ARCH_X86_64 {
			ap.intervals = overlay(ap.intervals, []interval{{start: 0xffffffff, ret: c.retDefault}}, 0xffffffff, 0xffffffff)
		}
		ap.intervals = merge(ap.intervals)
	}

	if c.listener {
		c.flags |= flagNewListener
		if c.flags&flagTSYNC != 0 {
			// TSYNC with a listener is only accepted with TSYNC_ESRCH
			// (the error can no longer be a thread id).
			c.flags |= flagTSYNCESRCH
		}
	} else {
		// Without a listener the flag has no meaning and the kernel
		// refuses it (EINVAL); drop it rather than fail.
		c.flags &^= flagWaitKillableRecv
	}
	return c, nil
}

// overlay replaces [lo, hi] of base with iv (which starts at lo and covers it).
func overlay(base, iv []interval, lo, hi uint32) []interval {
	out := make([]interval, 0, len(base)+len(iv)+1)
	// outcome of base at position p
	at := func(p uint32) interval {
		j := sort.Search(len(base), func(i int) bool { return base[i].start > p }) - 1
		return base[j]
	}
	for _, b := range base {
		if b.start < lo {
			out = append(out, b)
		}
	}
	for _, x := range iv {
		if x.start >= lo && x.start <= hi {
			out = append(out, x)
		}
	}
	if hi != 0xffffffff {
		after := at(hi + 1)
		after.start = hi + 1
		out = append(out, after)
		for _, b := range base {
			if b.start > hi+1 {
				out = append(out, b)
			}
		}
	}
	return out
}

// merge drops intervals overridden by a later one at the same start and joins
// adjacent intervals with the same constant outcome.
func merge(iv []interval) []interval {
	dedup := make([]interval, 0, len(iv))
	for _, x := range iv {
		if n := len(dedup); n > 0 && dedup[n-1].start == x.start {
			dedup[n-1] = x
			continue
		}
		dedup = append(dedup, x)
	}
	out := dedup[:0]
	for _, x := range dedup {
		if n := len(out); n > 0 && out[n-1].rules == nil && x.rules == nil && out[n-1].ret == x.ret {
			continue
		}
		out = append(out, x)
	}
	return out
}

// emit generates the program for c. linear selects a libseccomp-style linear
// chain of one comparison per syscall instead of the binary search; it exists
// only so the benchmark can compare the two.
func emit(c *compiled, linear bool) ([]unix.SockFilter, error) {
	a := &asm{ins: make([]insn, 0, 1024), labels: make([]int, 0, 1024)}
	a.load(offArch)
	targets := make([]label, len(c.arches))
	for i, ap := range c.arches {
		targets[i] = a.newLabel()
		a.jmp(opJEQ, ap.audit, targets[i], a.next())
	}
	a.ret(badArchRet)
	for i, ap := range c.arches {
		a.here(targets[i])
		a.load(offNr)
		if linear {
			a.chain(ap.intervals, c.retDefault)
		} else {
			a.tree(ap.intervals, nil)
		}
	}
	return a.link()
}

// retPool holds one shared RET per constant outcome for a subtree, so the
// search jumps straight to it instead of emitting a RET per leaf: docker's
// profile shrinks by about a third, and the kernel's load time grows with
// program size (JIT).
type retPool struct {
	labels map[uint32]label
	order  []uint32
}

// poolSpan bounds the intervals sharing a pool, keeping most jumps to it
// within a conditional jump's 255-instruction reach.
const poolSpan = 64

func (a *asm) pooled(p *retPool, ret uint32) label {
	l, ok := p.labels[ret]
	if !ok {
		l = a.newLabel()
		p.labels[ret] = l
		p.order = append(p.order, ret)
	}
	return l
}

// tree emits a binary search over iv; A holds nr.
func (a *asm) tree(iv []interval, p *retPool) {
	if p == nil && len(iv) <= poolSpan {
		p = &retPool{labels: map[uint32]label{}}
		a.tree(iv, p)
		for _, r := range p.order {
			a.here(p.labels[r])
			a.ret(r)
		}
		return
	}
	if len(iv) == 1 {
		a.outcome(iv[0])
		return
	}
	mid := len(iv) / 2
	target := func(sub []interval) (label, bool) {
		if p != nil && len(sub) == 1 && sub[0].rules == nil {
			return a.pooled(p, sub[0].ret), true
		}
		return a.newLabel(), false
	}
	right, rightPooled := target(iv[mid:])
	left, leftPooled := target(iv[:mid])
	a.jmp(opJGE, iv[mid].start, right, left)
	if !leftPooled {
		a.here(left)
		a.tree(iv[:mid], p)
	}
	if !rightPooled {
		a.here(right)
		a.tree(iv[mid:], p)
	}
}

// chain emits the linear form libseccomp and crun produce: one JEQ per
// syscall number in nr order (wide ranges such as bad-arch and ENOSYS as a
// range check first), then the default.
func (a *asm) chain(iv []interval, def uint32) {
	var singles []interval
	for i, x := range iv {
		if x.rules == nil && x.ret == def {
			continue
		}
		end := uint32(0xffffffff)
		if i+1 < len(iv) {
			end = iv[i+1].start - 1
		}
		if end-x.start < 64 {
			for n := x.start; ; n++ {
				y := x
				y.start = n
				singles = append(singles, y)
				if n == end {
					break
				}
			}
			continue
		}
		body, skip := a.newLabel(), a.newLabel()
		if end == 0xffffffff {
			a.jmp(opJGE, x.start, body, skip)
		} else {
			lower := a.newLabel()
			a.jmp(opJGE, x.start, lower, skip)
			a.here(lower)
			a.jmp(opJGT, end, skip, body)
		}
		a.here(body)
		a.outcome(x)
		a.here(skip)
	}
	for _, x := range singles {
		body, skip := a.newLabel(), a.newLabel()
		a.jmp(opJEQ, x.start, body, skip)
		a.here(body)
		a.outcome(x)
		a.here(skip)
	}
	a.ret(def)
}

// outcome emits the decision for one interval. Argument checks clobber A, so
// this is always a leaf that ends in RET.
func (a *asm) outcome(x interval) {
	if x.rules == nil {
		a.ret(x.ret)
		return
	}
	for _, r := range x.rules.conditional {
		fail := a.newLabel()
		for _, cd := range r.conds {
			a.cmp(cd, x.rules.bits32, fail)
		}
		a.ret(r.ret)
		a.here(fail)
	}
	a.ret(x.rules.fallback)
}

// cmp emits one argument comparison: it falls through when cd holds and
// jumps to fail otherwise. 64-bit values are compared as (hi, lo) pairs:
// the high halves decide unless equal, then the low halves do.
func (a *asm) cmp(cd cond, bits32 bool, fail label) {
	lo := offArgs + 8*uint32(cd.arg)
	hi := lo + 4
	v, v2 := cd.val, cd.val2
	vlo, vhi := uint32(v), uint32(v>>32)
	pass := a.newLabel()
	// checkHi emits the high-half test for ordered ops: decided → ok/ko,
	// equal → fall through to the low half.
	ordered := func(gtHi, ltHi label) {
		if bits32 {
			return
		}
		a.load(hi)
		a.jmp(opJGT, vhi, gtHi, a.next())
		a.jmp(opJEQ, vhi, a.next(), ltHi)
	}
	switch cd.op {
	case specs.OpEqualTo:
		if !bits32 {
			a.load(hi)
			a.jmp(opJEQ, vhi, a.next(), fail)
		}
		a.load(lo)
		a.jmp(opJEQ, vlo, pass, fail)
	case specs.OpNotEqual:
		if !bits32 {
			a.load(hi)
			a.jmp(opJEQ, vhi, a.next(), pass)
		}
		a.load(lo)
		a.jmp(opJEQ, vlo, fail, pass)
	case specs.OpGreaterThan:
		ordered(pass, fail)
		a.load(lo)
		a.jmp(opJGT, vlo, pass, fail)
	case specs.OpGreaterEqual:
		ordered(pass, fail)
		a.load(lo)
		a.jmp(opJGE, vlo, pass, fail)
	case specs.OpLessThan:
		ordered(fail, pass)
		a.load(lo)
		a.jmp(opJGE, vlo, fail, pass)
	case specs.OpLessEqual:
		ordered(fail, pass)
		a.load(lo)
		a.jmp(opJGT, vlo, fail, pass)
	case specs.OpMaskedEqual:
		// OCI/libseccomp: value is the mask, valueTwo the datum, and
		// libseccomp masks the datum too.
		mlo, mhi := uint32(v), uint32(v>>32)
		dlo, dhi := uint32(v2)&mlo, uint32(v2>>32)&mhi
		if !bits32 {
			a.load(hi)
			a.and(mhi)
			a.jmp(opJEQ, dhi, a.next(), fail)
		}
		a.load(lo)
		a.and(mlo)
		a.jmp(opJEQ, dlo, pass, fail)
	}
	a.here(pass)
}
