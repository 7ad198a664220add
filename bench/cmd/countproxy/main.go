// Command countproxy is a loopback TCP proxy that counts the bytes that pass
// through it in each direction, for the upload benchmark: the bytes a client
// puts on the wire (request lines, headers and bodies) are what it costs on a
// real link.
//
//	countproxy -upstream 127.0.0.1:10000 -addr-file a -stats-file s
//
// It listens on 127.0.0.1 (a free port unless -listen says otherwise), writes
// the address it listens on to -addr-file, and on SIGTERM or SIGINT writes
// {"client_to_server":N,"server_to_client":M,"connections":K} to -stats-file
// and exits.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

type counter struct{ n *atomic.Int64 }

func (c counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
	upstream := flag.String("upstream", "", "host:port to forward to")
	addrFile := flag.String("addr-file", "", "write the listening address here")
	statsFile := flag.String("stats-file", "", "write the byte counts here on exit (default stdout)")
	flag.Parse()
	if *upstream == "" {
		fmt.Fprintln(os.Stderr, "countproxy: -upstream is required")
		os.Exit(2)
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || (host != "127.0.0.1" && host != "localhost" && host != "::1") {
		fmt.Fprintln(os.Stderr, "countproxy: -listen must be a loopback address")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "countproxy:", err)
		os.Exit(1)
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "countproxy:", err)
			os.Exit(1)
		}
	}
	var up, down, conns atomic.Int64
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s, err := net.Dial("tcp", *upstream)
				if err != nil {
					return
				}
				defer s.Close()
				done := make(chan struct{}, 2)
				go func() {
					_, _ = io.Copy(io.MultiWriter(s, counter{&up}), c)
					if tc, ok := s.(*net.TCPConn); ok {
						_ = tc.CloseWrite()
					}
					done <- struct{}{}
				}()
				go func() {
					_, _ = io.Copy(io.MultiWriter(c, counter{&down}), s)
					if tc, ok := c.(*net.TCPConn); ok {
						_ = tc.CloseWrite()
					}
					done <- struct{}{}
				}()
				<-done
				<-done
			}()
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ln.Close()
	out, _ := json.Marshal(map[string]int64{"client_to_server": up.Load(), "server_to_client": down.Load(), "connections": conns.Load()})
	out = append(out, '\n')
	if *statsFile != "" {
		_ = os.WriteFile(*statsFile, out, 0o644)
	} else {
		os.Stdout.Write(out)
	}
}
