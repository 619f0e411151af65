package client

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"time"
)

// Hijacked attach and exec start (the Docker API's connection upgrade):
//
//	client                                   daemon
//	POST /vX.Y/containers/ID/attach?…  ──▶
//	  Connection: Upgrade, Upgrade: tcp
//	                                    ◀──  HTTP/1.1 101 UPGRADED
//	                                         Content-Type: application/vnd.docker.raw-stream
//	                                              or …multiplexed-stream (stdcopy frames)
//	stdin bytes ──▶ … CloseWrite (half-close: the process sees EOF)
//	                                    ◀──  stdout/stderr bytes … EOF when it exits
//
// The request goes over a new connection of its own rather than one from
// the transport's pool, so the raw connection can be handed to the caller.
// Daemons that do not upgrade answer 200 and then stream the same way;
// docker's client accepts both, and so does this one.

// HijackedResponse is an upgraded connection: write stdin to Conn, read
// output from Reader.
type HijackedResponse struct {
	mediaType string
	Conn      net.Conn
	Reader    *bufio.Reader
}

// Close closes the connection.
func (h *HijackedResponse) Close() { _ = h.Conn.Close() }

// MediaType returns the response's Content-Type, if it sent one.
func (h *HijackedResponse) MediaType() (string, bool) {
	return h.mediaType, h.mediaType != ""
}

// CloseWriter is a connection that can be half-closed.
type CloseWriter interface {
	CloseWrite() error
}

// CloseWrite half-closes the connection (stdin EOF), when it supports it.
func (h *HijackedResponse) CloseWrite() error {
	if cw, ok := h.Conn.(CloseWriter); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (cli *Client) postHijacked(ctx context.Context, p string, query url.Values, headers header, body any) (HijackedResponse, error) {
	r, err := jsonEncode(body)
	if err != nil {
		return HijackedResponse{}, err
	}
	req, err := cli.buildRequest(ctx, "POST", cli.apiPath(ctx, p, query), headers, r)
	if err != nil {
		return HijackedResponse{}, err
	}
	conn, mediaType, err := cli.setupHijackConn(req, "tcp")
	if err != nil {
		return HijackedResponse{}, err
	}
	return HijackedResponse{Conn: conn, Reader: bufio.NewReader(conn), mediaType: mediaType}, nil
}

func (cli *Client) setupHijackConn(req *request, proto string) (retConn net.Conn, mediaType string, retErr error) {
	ctx := req.ctx
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", proto)

	conn, err := cli.transport.dial(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("cannot connect to the Docker daemon. Is 'docker daemon' running on this host?: %w", err)
	}
	defer func() {
		if retErr != nil {
			_ = conn.Close()
		}
	}()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(30 * time.Second)
	}

	hc := &hijackedConn{Conn: conn, r: bufio.NewReader(conn)}
	// Until the upgrade is answered, cancelling ctx aborts the exchange.
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = hc.Conn.Close()
		close(cancelled)
	})
	defer func() {
		if !stop() {
			<-cancelled
			retConn, mediaType, retErr = nil, "", ctx.Err()
		}
	}()

	if err := writeRequest(hc.Conn, req); err != nil {
		return nil, "", err
	}
	resp, err := readResponse(hc.r, req)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != 101 && resp.StatusCode != 200 {
		return nil, "", fmt.Errorf("unable to upgrade to %s, received %d", proto, resp.StatusCode)
	}
	// Output the daemon sent along with the 101 sits in hc.r: keep reading
	// through it. Otherwise hand out the bare connection.
	if hc.r.Buffered() > 0 {
		if _, ok := hc.Conn.(CloseWriter); ok {
			conn = &hijackedConnCloseWriter{hc}
		} else {
			conn = hc
		}
	} else {
		hc.r.Reset(nil)
	}
	return conn, resp.Header.Get("Content-Type"), nil
}

type hijackedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *hijackedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

type hijackedConnCloseWriter struct{ *hijackedConn }

func (c *hijackedConnCloseWriter) CloseWrite() error { return c.Conn.(CloseWriter).CloseWrite() }
