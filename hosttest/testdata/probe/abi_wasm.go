//go:build wasm

package main

// Same import the SDK uses for SendHttpResponse; declared here because the
// SDK's wrapper cannot pass status-code details.
//
//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(statusCode uint32, detailsData *byte, detailsSize int32,
	bodyData *byte, bodySize int32, headersData *byte, headersSize int32, grpcStatus int32) uint32

//go:wasmimport wasi_snapshot_preview1 random_get
func randomGet(buf *byte, size uint32) uint32
