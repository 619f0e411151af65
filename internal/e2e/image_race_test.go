package e2e

import (
	"strconv"
	"strings"
	"sync"
	"testing"
)

// A create racing `rmi` of its image: either the create fails (the image
// went first) or the removal is refused (a container uses the image). It
// must never end with a container whose image was removed under it: such a
// container could not start ("image of container …: No such image"), which
// 8 of 15 races did before image removal waited for creates in flight.
func TestCreateRacingRmi(t *testing.T) {
	dockerCLI(t)
	requireRegistry(t)
	d := startDaemon(t, "--bridge", "none")
	tarPath := d.exportedBusybox(t)

	for i := range 20 {
		// a label makes each import its own image (the layer is shared)
		ref := "racebox:" + strconv.Itoa(i)
		d.must("docker", "import", "--change", "LABEL race="+strconv.Itoa(i), tarPath, ref)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = d.docker("create", "--pull", "never", "--network", "none", "--label", "race=1", ref, "true")
		}()
		_, _ = d.docker("rmi", ref)
		wg.Wait()
	}
	ids := strings.Fields(d.must("docker", "ps", "-aq", "--filter", "label=race=1"))
	if len(ids) == 0 {
		t.Log("every create lost its race; nothing to check")
	}
	for _, id := range ids {
		if out, err := d.docker("start", "-a", id); err != nil {
			t.Errorf("container %s, created while its image was removed, does not start: %v\n%s", id, err, out)
		}
	}
}
