package gateway

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestExtractTags: Envoy's tag extraction on a name: the first capture
// group is cut out, the second (else the first) is the value; regexes run
// on the whole name; fixed values apply to every stat.
func TestExtractTags(t *testing.T) {
	sdk := []StatTag{
		{Name: "value", re: regexp.MustCompile(`(_value=([a-zA-Z]+))`)},
		{Name: "reporter", re: regexp.MustCompile(`(\.reporter=([a-zA-Z]+))`)},
	}
	for _, tc := range []struct {
		name, stat, want string
		tags             []StatTag
		labels           []label
	}{
		{"the Go SDK's metrics example", "custom_header_value_counts_value=foo.reporter=wasmgosdk", "custom_header_value_counts", sdk,
			[]label{{"value", "foo"}, {"reporter", "wasmgosdk"}}},
		{"no match", "concierge_jwt_auth_allowed_total", "concierge_jwt_auth_allowed_total", sdk, nil},
		{"one group is cut and is the value", "api_rq_v2", "api_rq_", []StatTag{{Name: "version", re: regexp.MustCompile(`_(v[0-9]+)$`)}},
			[]label{{"version", "v2"}}},
		{"fixed value", "a_total", "a_total", []StatTag{{Name: "cluster", Fixed: "edge"}}, []label{{"cluster", "edge"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, labels := extractTags(tc.stat, tc.tags)
			if got != tc.want || !reflect.DeepEqual(labels, tc.labels) {
				t.Errorf("extractTags(%q) = %q, %v; want %q, %v", tc.stat, got, labels, tc.want, tc.labels)
			}
		})
	}
}

// TestStatsTagsShapePrometheus: stats_config.stats_tags turn parts of the
// filters' metric names into labels in /stats/prometheus, as in Envoy.
func TestStatsTagsShapePrometheus(t *testing.T) {
	one := echoServer(t, "one")
	y := `stats_config:
  stats_tags:
  - tag_name: plugin
    regex: '^((probe)_)'
  - tag_name: reporter
    fixed_value: gw
` + bootstrap(wasmFilter("probe", module(t, "hosttest/testdata/probe"), `{"name":"probe","metrics":true}`),
		"- name: all\n  match: { prefix: / }\n  route: { cluster: one }", staticCluster("one", []string{port(t, one)}, ""))
	g := start(t, y)
	c := client(t)
	do(t, c, "GET", "http://"+g.Addr("ingress")+"/x", map[string]string{"x-probe": "metric hist:3"}, nil)
	body := string(do(t, c, "GET", "http://"+g.AdminAddr()+"/stats/prometheus", nil, nil).body)
	for _, want := range []string{
		"# TYPE requests_total counter\nrequests_total{plugin=\"probe\",reporter=\"gw\"} 1\n",
		`size_bucket{plugin="probe",reporter="gw",le="5"} 1`,
		`size_count{plugin="probe",reporter="gw"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/stats/prometheus lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "probe_requests_total") {
		t.Errorf("/stats/prometheus still has the untagged name:\n%s", body)
	}
}

func TestStatsTagsRefusals(t *testing.T) {
	for _, tc := range []struct{ tags, want string }{
		{"  - tag_name: x\n    regex: '(unclosed'", "stats_config.stats_tags[0] (x).regex: error parsing regexp"},
		{"  - tag_name: x\n    regex: 'nogroup'", `needs a capture group`},
	} {
		got, _ := compileErr(t, "stats_config:\n  stats_tags:\n"+tc.tags+"\n"+bootstrap("", oneRoute, oneCluster("")))
		if !strings.Contains(got, tc.want) {
			t.Errorf("Compile error = %q, want it to contain %q", got, tc.want)
		}
	}
}
