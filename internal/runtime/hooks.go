package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runHooks runs hooks in order, each with the state JSON on stdin and its
// timeout; the first failure stops the chain.
func runHooks(hooks []specs.Hook, st specs.State, kind string) error {
	if len(hooks) == 0 {
		return nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		ctx := context.Background()
		var cancel context.CancelFunc = func() {}
		if h.Timeout != nil && *h.Timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		}
		cmd := exec.CommandContext(ctx, h.Path)
		if len(h.Args) > 0 {
			cmd.Args = h.Args
		}
		cmd.Env = h.Env
		cmd.Stdin = bytes.NewReader(b)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		if err != nil {
			if timedOut {
				return fmt.Errorf("%s hook #%d (%s) timed out after %ds", kind, i, h.Path, *h.Timeout)
			}
			return fmt.Errorf("%s hook #%d (%s): %w: %s", kind, i, h.Path, err, bytes.TrimSpace(out.Bytes()))
		}
	}
	return nil
}

func hookState(cfg *initConfig, status specs.ContainerState) specs.State {
	return specs.State{
		Version: specs.Version, ID: cfg.ID, Status: status, Pid: cfg.Pid,
		Bundle: cfg.Bundle, Annotations: cfg.Annotations,
	}
}
