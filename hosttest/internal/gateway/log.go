package gateway

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/concierge-wasm/concierge/hosttest/internal/engine"
)

// Level is a log level, named as Envoy's --log-level values are.
type Level int

const (
	LevelTrace Level = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
	LevelCritical
	LevelOff
)

var levelNames = []string{"trace", "debug", "info", "warning", "error", "critical", "off"}

func (l Level) String() string { return levelNames[l] }

// ParseLevel reads an Envoy --log-level value.
func ParseLevel(s string) (Level, error) {
	s = strings.ToLower(s)
	if s == "warn" {
		return LevelWarn, nil
	}
	for i, n := range levelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("unknown log level %q (trace, debug, info, warning, error, critical, off)", s)
}

// Logger writes Envoy-style lines: [time][level][component] message.
type Logger struct {
	mu         sync.Mutex
	w          io.Writer
	level      Level
	components map[string]Level // --component-log-level overrides
}

// NewLogger logs to w at level and above.
func NewLogger(w io.Writer, level Level) *Logger { return &Logger{w: w, level: level} }

// SetComponentLevels applies Envoy's --component-log-level value
// ("wasm:trace,upstream:debug"): each named component logs at its own
// level. Unknown components and levels are refused, as Envoy refuses them.
func (l *Logger) SetComponentLevels(spec string) error {
	levels := map[string]Level{}
	for _, part := range strings.Split(spec, ",") {
		name, lv, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return fmt.Errorf("component log level %q: want component:level", part)
		}
		if !envoyComponents[name] {
			return fmt.Errorf("component log level %q: invalid component specified %q", part, name)
		}
		level, err := ParseLevel(lv)
		if err != nil {
			return fmt.Errorf("component log level %q: %v", part, err)
		}
		levels[name] = level
	}
	l.mu.Lock()
	l.components = levels
	l.mu.Unlock()
	return nil
}

// envoyComponents are Envoy's logger names (source/common/common/logger.h)
// that --component-log-level accepts. The gateway logs as admin, config,
// http, main, upstream and wasm; the others are accepted and quiet.
var envoyComponents = map[string]bool{}

func init() {
	for _, c := range strings.Fields(`admin alternate_protocols_cache aws assert backtrace cache_filter client config connection
		conn_handler compression credential_provider decompression dns dubbo envoy_bug ext_authz ext_proc rocketmq
		file filter forward_proxy geolocation grpc happy_eyeballs hc health_checker http http2 http3 hystrix init io
		jwt kafka key_value_store lua main matcher misc mongo multi_connection oauth2 quic quic_stream pool rbac rds
		redis router runtime stats secret tap testing thrift tracing upstream udp wasm websocket golang`) {
		envoyComponents[c] = true
	}
}

func (l *Logger) enabled(level Level, component string) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	min, ok := l.components[component]
	l.mu.Unlock()
	if !ok {
		min = l.level
	}
	return level >= min
}

func (l *Logger) logf(level Level, component, format string, args ...any) {
	if !l.enabled(level, component) {
		return
	}
	line := fmt.Sprintf("[%s][%s][%s] %s\n", time.Now().Format("2006-01-02 15:04:05.000"), level, component, fmt.Sprintf(format, args...))
	l.mu.Lock()
	io.WriteString(l.w, line)
	l.mu.Unlock()
}

func (l *Logger) Debugf(component, format string, args ...any) {
	l.logf(LevelDebug, component, format, args...)
}
func (l *Logger) Infof(component, format string, args ...any) {
	l.logf(LevelInfo, component, format, args...)
}
func (l *Logger) Warnf(component, format string, args ...any) {
	l.logf(LevelWarn, component, format, args...)
}
func (l *Logger) Errorf(component, format string, args ...any) {
	l.logf(LevelError, component, format, args...)
}

// plugin logs a plugin's line as Envoy does, behind its wasmLogPrefix.
func (l *Logger) plugin(e engine.LogEntry, prefix string) {
	level := Level(e.Level)
	if e.Level > engine.LevelCritical {
		level = LevelCritical
	}
	l.logf(level, "wasm", "%s: %s", prefix, e.Message)
}

// wasmLogPrefix is Envoy's prefix of a plugin's log lines (proxy-wasm-cpp-host
// PluginBase::makeLogPrefix): "wasm log", then the plugin's config.name,
// root_id and vm_id, each only when it is not empty.
func wasmLogPrefix(name, rootID, vmID string) string {
	p := "wasm log"
	for _, part := range []string{name, rootID, vmID} {
		if part != "" {
			p += " " + part
		}
	}
	return p
}
