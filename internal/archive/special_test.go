package archive

import (
	"archive/tar"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSpecialHeader(t *testing.T) {
	for _, c := range []struct {
		mode         uint32
		typ          byte
		major, minor int64
	}{
		{unix.S_IFCHR | 0o666, tar.TypeChar, 1, 3},
		{unix.S_IFBLK | 0o660, tar.TypeBlock, 1, 3},
		{unix.S_IFIFO | 0o644, tar.TypeFifo, 0, 0},
	} {
		var h tar.Header
		SpecialHeader(&h, c.mode, unix.Mkdev(1, 3))
		if h.Typeflag != c.typ || h.Devmajor != c.major || h.Devminor != c.minor {
			t.Errorf("mode %o: type %c dev %d:%d", c.mode, h.Typeflag, h.Devmajor, h.Devminor)
		}
	}
}
