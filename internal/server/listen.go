package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// CheckListen refuses a listen address that is not loopback unless TLS is
// configured: agent tokens and the fleet's layout must not cross a network
// in clear text.
func CheckListen(addr string, withTLS bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w (use host:port, e.g. 127.0.0.1:8080)", addr, err)
	}
	if withTLS {
		return nil
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not loopback: give --tls-cert and --tls-key to serve other hosts (agents send a token)", addr)
	}
	return nil
}

// ServeOptions say how to listen.
type ServeOptions struct {
	Listen          string
	TLSCert, TLSKey string
	ShutdownTimeout time.Duration
	OnListening     func(addr string) // called with the bound address
}

// ListenAndServe serves s until ctx ends, then shuts down gracefully. It
// also runs the Azure pull loop when configured.
func (s *Server) ListenAndServe(ctx context.Context, o ServeOptions) error {
	withTLS := o.TLSCert != "" || o.TLSKey != ""
	if withTLS && (o.TLSCert == "" || o.TLSKey == "") {
		return errors.New("give both --tls-cert and --tls-key")
	}
	if err := CheckListen(o.Listen, withTLS); err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // an on-demand Azure pull can take a while
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	if withTLS {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return fmt.Errorf("load the TLS certificate: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	if o.OnListening != nil {
		o.OnListening(ln.Addr().String())
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go s.Run(runCtx)
	errc := make(chan error, 1)
	go func() {
		if withTLS {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	to := o.ShutdownTimeout
	if to <= 0 {
		to = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), to)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
