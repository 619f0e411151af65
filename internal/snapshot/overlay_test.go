package snapshot_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/snapshot/testsuite"
)

func TestOverlay(t *testing.T) { testsuite.Run(t, snapshot.NewOverlay) }

func TestNative(t *testing.T) { testsuite.Run(t, snapshot.NewNative) }
