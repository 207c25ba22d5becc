package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// baselines are the plain reverse proxies every row is compared with, in
// front of the same upstream addresses the gateway's route reaches: Go's
// httputil.ReverseProxy in this process, and nginx when it is on PATH
// (with as many worker processes as the gateway's largest worker count).
func baselines(upstreams []string, cred [2]string, clients, workers int) []*row {
	rows := []*row{{name: "baseline: Go httputil.ReverseProxy", baseline: true, cred: cred, start: func() (string, func(), error) {
		return startGoProxy(upstreams, clients)
	}}}
	if nginx, err := exec.LookPath("nginx"); err == nil {
		rows = append(rows, &row{name: fmt.Sprintf("baseline: nginx (%d workers)", workers), baseline: true, cred: cred, start: func() (string, func(), error) {
			return startNginx(nginx, upstreams, workers)
		}})
	}
	return rows
}

func startGoProxy(upstreams []string, clients int) (string, func(), error) {
	targets := make([]*url.URL, len(upstreams))
	for i, a := range upstreams {
		targets[i] = &url.URL{Scheme: "http", Host: a}
	}
	var next atomic.Uint64
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * clients, IdleConnTimeout: 30 * time.Second}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Round robin, as the users cluster's ROUND_ROBIN.
			pr.SetURL(targets[next.Add(1)%uint64(len(targets))])
			pr.Out.Host = pr.In.Host
		},
		Transport: tr,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(ctx)
		cancel()
		tr.CloseIdleConnections()
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// startNginx runs nginx as a keep-alive reverse proxy from a scratch
// prefix directory, in the foreground, until stop.
func startNginx(bin string, upstreams []string, workers int) (string, func(), error) {
	dir, err := os.MkdirTemp("", "concierge-load-nginx-")
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close() // nginx binds it; a port taken meanwhile fails the start below
	var servers strings.Builder
	for _, u := range upstreams {
		fmt.Fprintf(&servers, "    server %s;\n", u)
	}
	conf := fmt.Sprintf(`worker_processes %d;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  upstream users {
%[3]s    keepalive 128;
  }
  server {
    listen %[4]s;
    location / {
      proxy_pass http://users;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`, workers, dir, servers.String(), addr)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		os.RemoveAll(dir)
	}
	// Bounded wait for the listener.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			os.RemoveAll(dir)
			return "", nil, errors.Join(fmt.Errorf("nginx exited: %v", err), errors.New(string(log)))
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return "http://" + addr, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("nginx did not listen on %s within 5s", addr)
}
