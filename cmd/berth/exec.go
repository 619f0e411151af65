package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const daemonName = "berthd"

// daemonBinary finds berthd: beside the berth binary (resolved), beside the
// path berth was started as (a symlink farm), then in PATH.
func daemonBinary() (string, error) {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	if strings.Contains(os.Args[0], "/") {
		dirs = append(dirs, filepath.Dir(os.Args[0]))
	}
	for _, d := range dirs {
		p := filepath.Join(d, daemonName)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(daemonName); err == nil {
		return p, nil
	}
	return "", errors.New("the daemon binary " + daemonName + " is not installed beside berth (" + strings.Join(dirs, ", ") + ") nor in PATH")
}
