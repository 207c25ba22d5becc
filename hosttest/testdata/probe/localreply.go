package main

import (
	"encoding/binary"
	"fmt"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// sendLocalResponseWithDetails is proxywasm.SendHttpResponse plus the
// status-code details argument of proxy_send_local_response, which the SDK
// always leaves empty. It calls the host import directly (abi_wasm.go).
func sendLocalResponseWithDetails(code uint32, details string, headers [][2]string, body []byte, grpcStatus int32) error {
	hs := serializeMap(headers)
	d := []byte(details)
	var bodyPtr *byte
	if len(body) > 0 {
		bodyPtr = &body[0]
	}
	return statusError(proxySendLocalResponse(code, &d[0], int32(len(d)),
		bodyPtr, int32(len(body)), &hs[0], int32(len(hs)), grpcStatus))
}

// serializeMap encodes pairs in the proxy-wasm map format: count, then
// (key size, value size) per pair, then each key and value NUL-terminated.
func serializeMap(pairs [][2]string) []byte {
	size := 4
	for _, p := range pairs {
		size += 8 + len(p[0]) + 1 + len(p[1]) + 1
	}
	b := make([]byte, 4, size)
	binary.LittleEndian.PutUint32(b, uint32(len(pairs)))
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[1])))
	}
	for _, p := range pairs {
		b = append(append(b, p[0]...), 0)
		b = append(append(b, p[1]...), 0)
	}
	return b
}

// statusError maps a proxy-wasm status to the SDK's errors, so results read
// the same as for SDK calls.
func statusError(status uint32) error {
	switch status {
	case 0:
		return nil
	case 1:
		return types.ErrorStatusNotFound
	case 2:
		return types.ErrorStatusBadArgument
	case 7:
		return types.ErrorStatusEmpty
	case 8:
		return types.ErrorStatusCasMismatch
	case 10:
		return types.ErrorInternalFailure
	case 12:
		return types.ErrorUnimplemented
	}
	return fmt.Errorf("unknown status code: %d", status)
}
