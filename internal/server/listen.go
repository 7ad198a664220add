package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
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
	// DebugListen, when set, serves Go's profiler (net/http/pprof) on this
	// loopback address, apart from the API.
	DebugListen string
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
	if o.DebugListen != "" {
		if err := serveDebug(runCtx, o.DebugListen); err != nil {
			ln.Close()
			return err
		}
	}
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
		s.Close()
		return err
	case <-ctx.Done():
	}
	to := o.ShutdownTimeout
	if to <= 0 {
		to = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), to)
	defer cancel()
	// handlers waiting for their batch's commit finish first; then the
	// intake's writers stop
	err = hs.Shutdown(sctx)
	s.Close()
	if err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveDebug serves the profiler on a loopback address until ctx ends.
func serveDebug(ctx context.Context, addr string) error {
	if err := CheckListen(addr, false); err != nil {
		return fmt.Errorf("--debug-listen: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s for the profiler: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	context.AfterFunc(ctx, func() { hs.Close() })
	return nil
}
