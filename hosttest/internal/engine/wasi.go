package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// WASI errnos Envoy's host returns.
const (
	errnoSuccess     = 0
	errnoBadf        = 8
	errnoInval       = 28
	errnoNoent       = 44
	errnoNosys       = 52
	errnoNotsup      = 58
	errnoNotcapable  = 76
	maxRandomPerCall = 64 << 10
)

// wasiFn returns an errno.
type wasiFn func(vm *VM, stack []uint64) uint32

// wasiSpec is one wasi_snapshot_preview1 function as proxy-wasm-cpp-host
// registers it: its signature, whether the 1.33-era host had it, and
// whether it may run while the module initialises.
type wasiSpec struct {
	name        string
	params      []api.ValueType
	old         bool // registered before cpp-host #533 (Envoy 1.33 profile)
	initAllowed bool // allowed during _initialize before #533
	fn          wasiFn
}

func (h *Host) instantiateWASI() error {
	b := h.runtime.NewHostModuleBuilder("wasi_snapshot_preview1")
	for _, spec := range h.wasiSpecs() {
		if h.opts.Profile == Envoy133 && !spec.old {
			continue // a module importing it fails to load, as in that Envoy
		}
		spec := spec
		results := []api.ValueType{i32}
		if spec.name == "proc_exit" {
			results = nil
		}
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
			vm := vmFrom(ctx)
			var errno uint32
			switch {
			case vm.phase == phaseMalloc && !mallocAllowed(spec.name, h.opts.Profile):
				errno = errnoNotcapable
			case vm.phase == phaseInit && !spec.initAllowed && h.opts.Profile == Envoy133:
				errno = errnoNotcapable
			default:
				errno = spec.fn(vm, stack)
			}
			if results != nil {
				stack[0] = uint64(errno)
			}
		}), spec.params, results).Export(spec.name)
	}
	_, err := b.Instantiate(h.ctx)
	return err
}

// Only these run inside proxy_on_memory_allocate (the Go GC may run there).
func mallocAllowed(name string, p Profile) bool {
	switch name {
	case "fd_write", "clock_time_get":
		return true
	case "poll_oneoff":
		return p == EnvoyLatest
	}
	return false
}

func ps(types ...api.ValueType) []api.ValueType { return types }

func (h *Host) wasiSpecs() []wasiSpec {
	badf := func(*VM, []uint64) uint32 { return errnoBadf }
	nosys := func(*VM, []uint64) uint32 { return errnoNosys }
	notsup := func(*VM, []uint64) uint32 { return errnoNotsup }
	logged := func(name string) wasiFn {
		return func(vm *VM, _ []uint64) uint32 {
			vm.host.log(LogEntry{Time: time.Now(), Level: LevelError, Filter: vm.plug.cfg.Name, Worker: vm.w.index, Message: "wasi " + name + " is not supported"})
			return errnoSuccess
		}
	}
	return []wasiSpec{
		{"args_get", ps(i32, i32), true, true, func(*VM, []uint64) uint32 { return errnoSuccess }},
		{"args_sizes_get", ps(i32, i32), true, true, func(vm *VM, s []uint64) uint32 {
			vm.mem.WriteUint32Le(u32(s[0]), 0)
			vm.mem.WriteUint32Le(u32(s[1]), 0)
			return errnoSuccess
		}},
		{"environ_get", ps(i32, i32), true, true, wasiEnvironGet},
		{"environ_sizes_get", ps(i32, i32), true, true, wasiEnvironSizesGet},
		{"clock_res_get", ps(i32, i32), false, true, func(vm *VM, s []uint64) uint32 {
			vm.mem.WriteUint64Le(u32(s[1]), 1)
			return errnoSuccess
		}},
		{"clock_time_get", ps(i32, i64, i32), true, true, wasiClockTimeGet},
		{"fd_write", ps(i32, i32, i32, i32), true, true, wasiFdWrite},
		{"fd_read", ps(i32, i32, i32, i32), true, false, nosys},
		{"fd_close", ps(i32), true, false, logged("fd_close")},
		{"fd_seek", ps(i32, i64, i32, i32), true, false, logged("fd_seek")},
		{"fd_fdstat_get", ps(i32, i32), true, true, wasiFdstatGet},
		{"fd_fdstat_set_flags", ps(i32, i32), true, true, nosys},
		{"fd_prestat_get", ps(i32, i32), true, true, badf},
		{"fd_prestat_dir_name", ps(i32, i32, i32), true, true, nosys},
		{"path_open", ps(i32, i32, i32, i32, i32, i64, i64, i32, i32), true, false, func(*VM, []uint64) uint32 { return errnoNoent }},
		{"random_get", ps(i32, i32), true, true, wasiRandomGet},
		{"sched_yield", nil, true, false, func(*VM, []uint64) uint32 { return errnoSuccess }},
		{"poll_oneoff", ps(i32, i32, i32, i32), true, true, h.wasiPollOneoff},
		{"proc_exit", ps(i32), true, false, func(vm *VM, s []uint64) uint32 {
			vm.host.log(LogEntry{Time: time.Now(), Level: LevelError, Filter: vm.plug.cfg.Name, Worker: vm.w.index,
				Message: fmt.Sprintf("wasi_unstable proc_exit(%d)", u32(s[0]))})
			return 0
		}},
		// Stubs cpp-host #533 added so that modules importing them load.
		{"proc_raise", ps(i32), false, true, nosys},
		{"fd_advise", ps(i32, i64, i64, i32), false, true, badf},
		{"fd_allocate", ps(i32, i64, i64), false, true, badf},
		{"fd_datasync", ps(i32), false, true, stdioNoop},
		{"fd_sync", ps(i32), false, true, stdioNoop},
		{"fd_fdstat_set_rights", ps(i32, i64, i64), false, true, badf},
		{"fd_filestat_get", ps(i32, i32), false, true, badf},
		{"fd_filestat_set_size", ps(i32, i64), false, true, badf},
		{"fd_filestat_set_times", ps(i32, i64, i64, i32), false, true, badf},
		{"fd_pread", ps(i32, i32, i32, i64, i32), false, true, badf},
		{"fd_pwrite", ps(i32, i32, i32, i64, i32), false, true, badf},
		{"fd_readdir", ps(i32, i32, i32, i64, i32), false, true, badf},
		{"fd_renumber", ps(i32, i32), false, true, badf},
		{"fd_tell", ps(i32, i32), false, true, badf},
		{"path_create_directory", ps(i32, i32, i32), false, true, notsup},
		{"path_filestat_get", ps(i32, i32, i32, i32, i32), false, true, func(*VM, []uint64) uint32 { return errnoNoent }},
		{"path_filestat_set_times", ps(i32, i32, i32, i32, i64, i64, i32), false, true, notsup},
		{"path_link", ps(i32, i32, i32, i32, i32, i32, i32), false, true, notsup},
		{"path_readlink", ps(i32, i32, i32, i32, i32, i32), false, true, notsup},
		{"path_remove_directory", ps(i32, i32, i32), false, true, notsup},
		{"path_rename", ps(i32, i32, i32, i32, i32, i32), false, true, notsup},
		{"path_symlink", ps(i32, i32, i32, i32, i32), false, true, notsup},
		{"path_unlink_file", ps(i32, i32, i32), false, true, notsup},
		{"sock_accept", ps(i32, i32, i32), false, true, notsup},
		{"sock_recv", ps(i32, i32, i32, i32, i32, i32), false, true, notsup},
		{"sock_send", ps(i32, i32, i32, i32, i32), false, true, notsup},
		{"sock_shutdown", ps(i32, i32), false, true, notsup},
	}
}

func stdioNoop(_ *VM, s []uint64) uint32 {
	if fd := u32(s[0]); fd == 1 || fd == 2 {
		return errnoSuccess
	}
	return errnoBadf
}

func (vm *VM) envBlock() []string {
	out := make([]string, 0, len(vm.base.Env))
	for _, e := range vm.base.Env {
		out = append(out, e.Key+"="+e.Value)
	}
	return out
}

func wasiEnvironSizesGet(vm *VM, s []uint64) uint32 {
	env := vm.envBlock()
	size := 0
	for _, e := range env {
		size += len(e) + 1
	}
	vm.mem.WriteUint32Le(u32(s[0]), uint32(len(env)))
	vm.mem.WriteUint32Le(u32(s[1]), uint32(size))
	return errnoSuccess
}

func wasiEnvironGet(vm *VM, s []uint64) uint32 {
	ptrs, buf := u32(s[0]), u32(s[1])
	for i, e := range vm.envBlock() {
		if !vm.mem.WriteUint32Le(ptrs+uint32(4*i), buf) || !vm.mem.Write(buf, append([]byte(e), 0)) {
			return errnoInval
		}
		buf += uint32(len(e) + 1)
	}
	return errnoSuccess
}

func wasiClockTimeGet(vm *VM, s []uint64) uint32 {
	var ns int64
	switch u32(s[0]) {
	case 0: // realtime
		ns = vm.host.clock.Now().UnixNano()
	case 1: // monotonic
		ns = vm.host.clock.Monotonic()
	default:
		return errnoNotsup
	}
	vm.mem.WriteUint64Le(u32(s[2]), uint64(ns))
	return errnoSuccess
}

// wasiFdWrite sends stdout to the log at info and stderr at error, one
// line per call with the trailing newline cut, as cpp-host does.
func wasiFdWrite(vm *VM, s []uint64) uint32 {
	fd, iovs, n, nwritten := u32(s[0]), u32(s[1]), u32(s[2]), u32(s[3])
	if fd != 1 && fd != 2 {
		return errnoBadf
	}
	var b strings.Builder
	total := uint32(0)
	for i := uint32(0); i < n; i++ {
		ptr, ok1 := vm.mem.ReadUint32Le(iovs + 8*i)
		l, ok2 := vm.mem.ReadUint32Le(iovs + 8*i + 4)
		if !ok1 || !ok2 {
			return errnoInval
		}
		data, ok := vm.mem.Read(ptr, l)
		if !ok {
			return errnoInval
		}
		b.Write(data)
		total += l
	}
	level := LevelInfo
	if fd == 2 {
		level = LevelError
	}
	vm.host.log(LogEntry{Time: time.Now(), Level: level, Filter: vm.plug.cfg.Name, Worker: vm.w.index, Message: strings.TrimSuffix(b.String(), "\n")})
	vm.mem.WriteUint32Le(nwritten, total)
	return errnoSuccess
}

// wasiFdstatGet reports stdio as filetype 0 (unknown), as cpp-host does;
// wazero's stock WASI says "character device", which makes the Go runtime
// behave better than it will in Envoy.
func wasiFdstatGet(vm *VM, s []uint64) uint32 {
	fd := u32(s[0])
	if fd != 1 && fd != 2 {
		return errnoBadf
	}
	var st [24]byte
	binary.LittleEndian.PutUint64(st[8:], 64) // rights_base = FD_WRITE
	vm.mem.Write(u32(s[1]), st[:])
	return errnoSuccess
}

func wasiRandomGet(vm *VM, s []uint64) uint32 {
	ptr, n := u32(s[0]), u32(s[1])
	if n > maxRandomPerCall {
		return errnoInval
	}
	buf := make([]byte, n)
	if err := vm.host.readRandom(buf); err != nil {
		return errnoInval
	}
	if !vm.mem.Write(ptr, buf) {
		return errnoInval
	}
	return errnoSuccess
}

// wasiPollOneoff never sleeps: Envoy's host either refuses (ENOSYS, which
// makes the Go runtime throw) or reports no events. A request to wait is
// recorded as blocking, since a sleeping callback stalls the worker.
func (h *Host) wasiPollOneoff(vm *VM, s []uint64) uint32 {
	in, nsubs, nevents := u32(s[0]), u32(s[2]), u32(s[3])
	for i := uint32(0); i < nsubs; i++ {
		base := in + 48*i
		tag, _ := vm.mem.ReadByte(base + 8)
		if tag != 0 {
			continue
		}
		timeout, _ := vm.mem.ReadUint64Le(base + 24)
		if timeout > 0 && vm.asleep == 0 {
			// Reported only if the callback then returns normally: the Go
			// runtime also sleeps on its way to crashing after a panic.
			vm.asleep = time.Duration(timeout)
		}
	}
	if h.opts.Profile == Envoy133 {
		return errnoNosys
	}
	vm.mem.WriteUint32Le(nevents, 0)
	return errnoSuccess
}

func (h *Host) noteBlocking(vm *VM, callback string, d time.Duration) {
	msg := fmt.Sprintf("plugin asked to sleep %v in %s (time.Sleep or a blocking call): Envoy never sleeps a worker; use on_tick or an http callout", d, callback)
	h.log(LogEntry{Time: time.Now(), Level: LevelCritical, Filter: vm.plug.cfg.Name, Worker: vm.w.index, Message: msg})
	h.mu.Lock()
	h.blocking = append(h.blocking, fmt.Sprintf("filter %q: %s", vm.plug.cfg.Name, msg))
	h.mu.Unlock()
}

// Blocking lists the times a plugin tried to sleep or block.
func (h *Host) Blocking() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.blocking...)
}
