package content

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func descOf(b string) ocispec.Descriptor {
	return ocispec.Descriptor{Digest: digest.FromString(b), Size: int64(len(b))}
}

func TestSharedIngestFollowReader(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := strings.Repeat("0123456789", 10000)
	d := descOf(data)
	leader, err := s.Begin(d)
	if err != nil || !leader.Leader() {
		t.Fatalf("begin: %v", err)
	}
	follower, err := s.Begin(d)
	if err != nil || follower.Leader() {
		t.Fatalf("second begin should join: %v", err)
	}
	r, err := follower.NewReader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		b, err := io.ReadAll(r)
		if err != nil {
			t.Error(err)
		}
		got <- string(b)
	}()
	// Written in pieces: the follower reads across them and stops at Finish.
	for i := 0; i < len(data); i += 7777 {
		leader.Write([]byte(data[i:min(i+7777, len(data))]))
	}
	if s.Has(d.Digest) {
		t.Fatal("visible before Finish")
	}
	if err := leader.Finish(nil); err != nil {
		t.Fatal(err)
	}
	if <-got != data {
		t.Fatal("follower read different bytes")
	}
	r.Close()
	if err := follower.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	leader.Release()
	follower.Release()
	if b, _ := s.ReadAll(d.Digest); string(b) != data {
		t.Fatal("stored content differs")
	}
	// Present now: Begin says so.
	if ing, err := s.Begin(d); ing != nil || err != nil {
		t.Fatalf("present blob: %v %v", ing, err)
	}
}

func TestIngestRejectsBadContent(t *testing.T) {
	s, _ := Open(t.TempDir())
	d := descOf("hello")
	for _, tc := range []struct {
		write string
		want  error
	}{{"hellO", ErrDigestMismatch}, {"hell", errdefs.ErrDataLoss}, {"hello!", errdefs.ErrDataLoss}} {
		ing, err := s.Begin(d)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := s.Begin(d)
		r, _ := f.NewReader(context.Background())
		_, werr := ing.Write([]byte(tc.write))
		err = ing.Finish(werr)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), d.Digest.String()) {
			t.Errorf("%q: got %v want %v", tc.write, err, tc.want)
		}
		if _, rerr := io.ReadAll(r); rerr == nil {
			t.Errorf("%q: follower read without error", tc.write)
		}
		if werr := f.Wait(context.Background()); !errors.Is(werr, tc.want) {
			t.Errorf("%q: follower Wait %v", tc.write, werr)
		}
		r.Close()
		ing.Release()
		f.Release()
		if s.Has(d.Digest) {
			t.Fatalf("%q: bad content became visible", tc.write)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root(), "ingest"))
	if len(ents) != 0 {
		t.Fatalf("%d temp files left", len(ents))
	}
}

func TestReleaseCancelsLeader(t *testing.T) {
	s, _ := Open(t.TempDir())
	d := descOf("data")
	a, _ := s.Begin(d)
	b, _ := s.Begin(d)
	a.Release()
	if a.Context().Err() != nil {
		t.Fatal("canceled while another party still waits")
	}
	b.Release()
	if a.Context().Err() == nil {
		t.Fatal("not canceled after every party left")
	}
	a.Finish(a.Context().Err())
}

func TestOpenRemovesPartialIngests(t *testing.T) {
	root := t.TempDir()
	s, _ := Open(root)
	ing, _ := s.Begin(descOf("partial"))
	ing.Write([]byte("par"))
	// Simulate a crash: no Finish. A new process opens the store.
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "ingest"))
	if len(ents) != 0 {
		t.Fatalf("partial ingest survived: %v", ents)
	}
}

func TestWriteUnknown(t *testing.T) {
	s, _ := Open(t.TempDir())
	d, n, err := s.WriteUnknown(context.Background(), strings.NewReader("abc"))
	if err != nil || d != digest.FromString("abc") || n != 3 || !s.Has(d) {
		t.Fatalf("%v %d %v", d, n, err)
	}
	if _, err := s.Size(digest.FromString("nope")); !errdefs.IsNotFound(err) {
		t.Fatal(err)
	}
	if _, err := s.Open("sha256:zz"); !errdefs.IsInvalidArgument(err) {
		t.Fatal(err)
	}
}

func TestBeginAfterAbandonStartsAfresh(t *testing.T) {
	s, _ := Open(t.TempDir())
	d := descOf("again")
	old, _ := s.Begin(d)
	old.Release() // every party left; the leader has not noticed yet
	fresh, err := s.Begin(d)
	if err != nil || !fresh.Leader() {
		t.Fatalf("joined an abandoned ingest: %v", err)
	}
	old.Finish(old.Context().Err())
	fresh.Write([]byte("again"))
	if err := fresh.Finish(nil); err != nil || !s.Has(d.Digest) {
		t.Fatalf("fresh ingest: %v", err)
	}
	fresh.Release()
}
