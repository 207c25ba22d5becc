package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestEnvoyAdminEndpoints: the admin endpoints tools and test suites poll
// answer in Envoy's formats.
func TestEnvoyAdminEndpoints(t *testing.T) {
	one := echoServer(t, "one")
	y := "node: { id: gw-1, cluster: edge }\n" + bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe","metrics":true}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: one }", staticCluster("one", []string{port(t, one)}, ""))
	g := start(t, y)
	c, admin := client(t), "http://"+g.AdminAddr()
	do(t, c, "GET", "http://"+g.Addr("ingress")+"/x", map[string]string{"x-probe": "metric"}, nil)

	t.Run("listeners", func(t *testing.T) {
		if r := do(t, c, "GET", admin+"/listeners", nil, nil); r.status != 200 || string(r.body) != "ingress::"+g.Addr("ingress")+"\n" {
			t.Errorf("/listeners = %d %q, want ingress::%s", r.status, r.body, g.Addr("ingress"))
		}
		var ls adminv3.Listeners
		r := do(t, c, "GET", admin+"/listeners?format=json", nil, nil)
		if err := protojson.Unmarshal(r.body, &ls); err != nil || len(ls.GetListenerStatuses()) != 1 || ls.GetListenerStatuses()[0].GetName() != "ingress" {
			t.Errorf("/listeners?format=json = %s (%v)", r.body, err)
		}
	})
	t.Run("server_info", func(t *testing.T) {
		var info adminv3.ServerInfo
		r := do(t, c, "GET", admin+"/server_info", nil, nil)
		if err := protojson.Unmarshal(r.body, &info); err != nil {
			t.Fatalf("/server_info = %s: %v", r.body, err)
		}
		if info.GetState() != adminv3.ServerInfo_LIVE || info.GetNode().GetId() != "gw-1" || info.GetVersion() == "" {
			t.Errorf("/server_info = %v, want LIVE, node gw-1, a version", &info)
		}
	})
	t.Run("stats", func(t *testing.T) {
		// The status class is counted once the response has gone out,
		// which may be after the client read it.
		var body string
		waitFor(t, 5*time.Second, "the request counted in /stats", func() bool {
			body = string(do(t, c, "GET", admin+"/stats", nil, nil).body)
			return strings.Contains(body, "http.ingress_http.downstream_rq_2xx: 1\n")
		})
		for _, want := range []string{"probe_requests_total: 1\n", "http.ingress_http.downstream_rq_total: 1\n", "http.ingress_http.downstream_rq_2xx: 1\n", "cluster.one.upstream_rq_total: 1\n", "cluster.one.membership_healthy: 1\n"} {
			if !strings.Contains(body, want) {
				t.Errorf("/stats lacks %q:\n%s", want, body)
			}
		}
		if body := string(do(t, c, "GET", admin+"/stats?filter=^cluster%5C.one%5C.upstream_rq_total$", nil, nil).body); body != "cluster.one.upstream_rq_total: 1\n" {
			t.Errorf("/stats?filter = %q, want only cluster.one.upstream_rq_total", body)
		}
		var js struct {
			Stats []struct {
				Name  string
				Value int64
			}
		}
		if err := json.Unmarshal(do(t, c, "GET", admin+"/stats?format=json&filter=probe_requests", nil, nil).body, &js); err != nil || len(js.Stats) != 1 || js.Stats[0].Value != 1 {
			t.Errorf("/stats?format=json: %+v (%v)", js, err)
		}
		if r := do(t, c, "GET", admin+"/stats?filter=(", nil, nil); r.status != 400 {
			t.Errorf("/stats?filter=( = %d, want 400", r.status)
		}
	})
	t.Run("config_dump", func(t *testing.T) {
		var dump adminv3.ConfigDump
		r := do(t, c, "GET", admin+"/config_dump", nil, nil)
		if err := protojson.Unmarshal(r.body, &dump); err != nil || len(dump.GetConfigs()) != 1 {
			t.Fatalf("/config_dump = %s (%v)", r.body, err)
		}
		var bs adminv3.BootstrapConfigDump
		if err := dump.GetConfigs()[0].UnmarshalTo(&bs); err != nil || bs.GetBootstrap().GetStaticResources().GetListeners()[0].GetName() != "ingress" {
			t.Errorf("/config_dump bootstrap = %v (%v)", &bs, err)
		}
	})
	t.Run("quitquitquit", func(t *testing.T) {
		if r := do(t, c, "GET", admin+"/quitquitquit", nil, nil); r.status != 405 {
			t.Errorf("GET /quitquitquit = %d, want 405: it changes state", r.status)
		}
		select {
		case <-g.Quit():
			t.Fatal("GET /quitquitquit asked the gateway to quit")
		default:
		}
		if r := do(t, c, "POST", admin+"/quitquitquit", nil, nil); r.status != 200 || string(r.body) != "OK\n" {
			t.Errorf("POST /quitquitquit = %d %q", r.status, r.body)
		}
		select {
		case <-g.Quit():
		case <-time.After(5 * time.Second):
			t.Fatal("POST /quitquitquit did not ask the gateway to quit")
		}
	})
}
