package image

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Import writes ImportOptions.Healthcheck as docker's config.Healthcheck,
// beside the OCI config fields the changes set.
func TestImportHealthcheck(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hc := &dockerspec.HealthcheckConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 2 * time.Second, Retries: 3}
	img, err := e.store.Import(ctx, bytes.NewReader(tarOf(t, map[string]string{"f": "x"})), ImportOptions{
		Ref: "hc:1", Changes: []string{`CMD ["x"]`}, Healthcheck: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := e.store.cs.ReadAll(img.Manifest.Config.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	got := cfg.Config.Healthcheck
	if got == nil || !slices.Equal(got.Test, hc.Test) || got.Interval != hc.Interval || got.Retries != 3 || !slices.Equal(cfg.Config.Cmd, []string{"x"}) {
		t.Errorf("config %s", raw)
	}
}
