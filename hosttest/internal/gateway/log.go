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
	mu    sync.Mutex
	w     io.Writer
	level Level
}

// NewLogger logs to w at level and above.
func NewLogger(w io.Writer, level Level) *Logger { return &Logger{w: w, level: level} }

func (l *Logger) logf(level Level, component, format string, args ...any) {
	if l == nil || level < l.level {
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

// plugin logs a plugin's line as Envoy does:
// "wasm log <plugin_name> <root_id> <vm_id>: <message>".
func (l *Logger) plugin(e engine.LogEntry, rootID, vmID string) {
	level := Level(e.Level)
	if e.Level > engine.LevelCritical {
		level = LevelCritical
	}
	l.logf(level, "wasm", "wasm log %s %s %s: %s", e.Filter, rootID, vmID, e.Message)
}
