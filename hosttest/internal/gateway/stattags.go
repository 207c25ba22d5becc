package gateway

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
)

// StatTag is one stats_config.stats_tags entry: a regex whose first
// capture group is cut out of the stat name and whose second (or, without
// one, the first) is the tag's value; or a fixed value every stat carries.
type StatTag struct {
	Name  string
	re    *regexp.Regexp
	Fixed string
}

func compileStatTags(c *checker, sc *metricsv3.StatsConfig) []StatTag {
	c.check(sc, "stats_config", fields{use: "stats_tags use_all_default_tags", warn: map[string]string{
		"stats_matcher":             "stat inclusion and exclusion (every stat is kept)",
		"histogram_bucket_settings": "histogram buckets (Envoy's defaults are used)",
	}})
	if v := sc.GetUseAllDefaultTags(); v != nil && !v.GetValue() {
		c.warnf("stats_config.use_all_default_tags: false is accepted, not emulated: the gateway's own stats keep Envoy's default tags (envoy_cluster_name, envoy_http_conn_manager_prefix, envoy_response_code_class)")
	}
	var out []StatTag
	for i, t := range sc.GetStatsTags() {
		at := fmt.Sprintf("stats_config.stats_tags[%d] (%s)", i, t.GetTagName())
		switch v := t.GetTagValue().(type) {
		case *metricsv3.TagSpecifier_Regex:
			re, err := regexp.Compile(v.Regex)
			if err != nil {
				c.errorf("%s.regex: %v", at, err)
				continue
			}
			if re.NumSubexp() < 1 {
				c.errorf("%s.regex: %q needs a capture group: the part of the name to cut out", at, v.Regex)
				continue
			}
			out = append(out, StatTag{Name: t.GetTagName(), re: re})
		case *metricsv3.TagSpecifier_FixedValue:
			out = append(out, StatTag{Name: t.GetTagName(), Fixed: v.FixedValue})
		default:
			// A tag name alone names one of Envoy's default tags, which the
			// gateway's own stats carry already.
			c.warnf("%s: a default tag by name is accepted, not emulated", at)
		}
	}
	return out
}

type label struct{ name, value string }

// extractTags applies the tags to a stat name as Envoy's tag producer
// does: every regex runs on the name as it is, the cut parts are removed
// together at the end, and the labels keep the configuration's order.
func extractTags(name string, tags []StatTag) (string, []label) {
	var labels []label
	type span struct{ from, to int }
	var cuts []span
	for _, t := range tags {
		if t.re == nil {
			labels = append(labels, label{t.Name, t.Fixed})
			continue
		}
		m := t.re.FindStringSubmatchIndex(name)
		if m == nil || m[2] < 0 {
			continue
		}
		value := name[m[2]:m[3]]
		if len(m) >= 6 && m[4] >= 0 {
			value = name[m[4]:m[5]]
		}
		labels = append(labels, label{t.Name, value})
		cuts = append(cuts, span{m[2], m[3]})
	}
	if len(cuts) == 0 {
		return name, labels
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i].from < cuts[j].from })
	var b strings.Builder
	at := 0
	for _, c := range cuts {
		if c.from > at {
			b.WriteString(name[at:c.from])
		}
		at = max(at, c.to)
	}
	b.WriteString(name[min(at, len(name)):])
	return b.String(), labels
}

func renderLabels(labels []label) string {
	if len(labels) == 0 {
		return ""
	}
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = fmt.Sprintf("%s=%q", promName(l.name), l.value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}
