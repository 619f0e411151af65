package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api/backend"
)

// execUser resolves `exec -u name[:group]` (or uid[:gid]) against the
// running container's /etc/passwd and /etc/group, as docker's getUser does:
// the primary group from passwd unless given, the user's supplementary
// groups from group, then the container's --group-add.
//
// The files belong to the container, which may have made them symlinks to
// anywhere: each is opened with openat2(RESOLVE_IN_ROOT) beneath an fd of
// the rootfs (symlinks resolve as inside the container, never out of it),
// must be a regular file (a FIFO would block the daemon) and is read with a
// size cap.
func (d *Daemon) execUser(c *Container, spec string) (specs.User, error) {
	rootfd, err := unix.Open(d.rootfsDir(c.ID), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return specs.User{}, fmt.Errorf("exec: rootfs of %s: %w", c.ID[:12], err)
	}
	defer unix.Close(rootfd)
	passwd, err := readInRoot(rootfd, "etc/passwd")
	if err != nil {
		return specs.User{}, err
	}
	group, err := readInRoot(rootfd, "etc/group")
	if err != nil {
		return specs.User{}, err
	}
	eu, err := user.GetExecUser(spec, nil, passwd, group)
	if err != nil {
		return specs.User{}, errMsg(errInvalid, "%s", err.Error())
	}
	u := specs.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid), AdditionalGids: []uint32{uint32(eu.Gid)}}
	for _, g := range eu.Sgids {
		u.AdditionalGids = append(u.AdditionalGids, uint32(g))
	}
	if len(c.HostConfig.GroupAdd) > 0 {
		group, err := readInRoot(rootfd, "etc/group")
		if err != nil {
			return specs.User{}, err
		}
		extra, err := user.GetAdditionalGroups(c.HostConfig.GroupAdd, group)
		if err != nil {
			return specs.User{}, errMsg(errInvalid, "%s", err.Error())
		}
		slices.Sort(extra) // map order in moby/sys/user
		for _, g := range extra {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	return u, nil
}

// maxEtcFile caps what is read of a container's passwd or group file.
const maxEtcFile = 4 << 20

// readInRoot reads rel beneath rootfd without leaving the root; a missing
// file is nil (moby/sys/user then resolves numeric ids only).
func readInRoot(rootfd int, rel string) (io.Reader, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	var fd int
	var err error
	for {
		fd, err = unix.Openat2(rootfd, rel, &how)
		if !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			break
		}
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("exec: open /%s in the container: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errMsg(errInvalid, "/%s in the container is not a regular file", rel)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxEtcFile))
	if err != nil {
		return nil, fmt.Errorf("exec: read /%s in the container: %w", rel, err)
	}
	return bytes.NewReader(b), nil
}

// execFailed ends an exec whose process could not be set up (an unknown
// -u user): as docker, the message goes to the client's stream (the API
// writes the returned error there once the connection is hijacked) and the
// exec exits 126, which the docker CLI reads back and exits with.
func (d *Daemon) execFailed(e *execProc, opts backend.ExecStartOptions, err error) error {
	if !opts.Detach && opts.Streams != nil {
		if _, serr := opts.Streams(e.cfg.Tty); serr != nil {
			return serr
		}
	}
	code := 126
	e.mu.Lock()
	e.running = false
	e.exitCode = &code
	e.mu.Unlock()
	close(e.done)
	d.containerEvent(e.c, events.ActionExecDie, map[string]string{"execID": e.id, "exitCode": "126"})
	return err
}
