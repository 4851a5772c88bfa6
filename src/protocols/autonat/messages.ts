/**
 * AutoNAT v2's wire messages (libp2p specs autonat/autonat-v2.md §RPC
 * Messages): the `.proto` text verbatim from the spec, the TypeScript shapes,
 * the codecs and the size limits. Every message is length-prefixed (unsigned
 * varint). On `/libp2p/autonat/2/dial-request` every message is a `Message`
 * (one of its four fields set); on `/libp2p/autonat/2/dial-back` the server
 * sends a `DialBack` and the client answers with a `DialBackResponse`.
 *
 * Also AutoNAT v1's `Message` (autonat/README.md §Protocol), for the v1 server.
 *
 * Pure code, no Effects; other folders import `AutoNat.ts`.
 *
 * @internal
 */
import { Result } from "effect"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as Protobuf from "../../core/Protobuf.ts"

/**
 * Largest message accepted on either stream (js-libp2p's `MAX_MESSAGE_SIZE`,
 * 8 KiB): a `DialDataResponse` carries at most 4096 data bytes (§Amplification
 * Attack Prevention), a `DialRequest` a handful of addresses.
 */
export const MAX_MESSAGE_SIZE = 8192

/** Addresses read from one `DialRequest` at most (the rest are ignored). */
export const MAX_ADDRS = 32

/** The `data` of one `DialDataResponse` at most (§Amplification Attack Prevention: "limited to 4096 bytes"). */
export const DIAL_DATA_CHUNK = 4096

const proto = Protobuf.define(`
syntax = "proto3";

message Message {
    oneof msg {
        DialRequest dialRequest   = 1;
        DialResponse dialResponse = 2;
        DialDataRequest dialDataRequest = 3;
        DialDataResponse dialDataResponse = 4;
    }
}


message DialRequest {
    repeated bytes addrs = 1;
    fixed64 nonce = 2;
}


message DialDataRequest {
    uint32 addrIdx = 1;
    uint64 numBytes = 2;
}


enum DialStatus {
    UNUSED            = 0;
    E_DIAL_ERROR      = 100;
    E_DIAL_BACK_ERROR = 101;
    OK                = 200;
}


message DialResponse {
    enum ResponseStatus {
        E_INTERNAL_ERROR   = 0;
        E_REQUEST_REJECTED = 100;
        E_DIAL_REFUSED     = 101;
        OK  = 200;
    }

    ResponseStatus status = 1;
    uint32 addrIdx        = 2;
    DialStatus dialStatus = 3;
}


message DialDataResponse {
    bytes data = 1;
}


message DialBack {
    fixed64 nonce = 1;
}

message DialBackResponse {
    enum DialBackStatus {
        OK = 0;
    }

    DialBackStatus status = 1;
}
`)

export const DialStatus = { UNUSED: 0, E_DIAL_ERROR: 100, E_DIAL_BACK_ERROR: 101, OK: 200 } as const
export const ResponseStatus = { E_INTERNAL_ERROR: 0, E_REQUEST_REJECTED: 100, E_DIAL_REFUSED: 101, OK: 200 } as const

export interface DialRequest {
  readonly addrs: ReadonlyArray<Uint8Array>
  readonly nonce: bigint
}
export interface DialDataRequest {
  readonly addrIdx: number
  readonly numBytes: bigint
}
export interface DialResponse {
  readonly status: number
  readonly addrIdx: number
  readonly dialStatus: number
}
export interface DialDataResponse {
  readonly data: Uint8Array
}
export interface Message {
  readonly dialRequest?: DialRequest
  readonly dialResponse?: DialResponse
  readonly dialDataRequest?: DialDataRequest
  readonly dialDataResponse?: DialDataResponse
}
export interface DialBack {
  readonly nonce: bigint
}
export interface DialBackResponse {
  readonly status: number
}

export const Message = proto.codec<Message>("Message")
export const DialBack = proto.codec<DialBack>("DialBack")
export const DialBackResponse = proto.codec<DialBackResponse>("DialBackResponse")

/** Which field of a `Message` is set (the first one, as a oneof decoder keeps the last; a peer sets one). */
export type MessageKind = "dialRequest" | "dialResponse" | "dialDataRequest" | "dialDataResponse" | "empty"
export const kindOf = (m: Message): MessageKind =>
  m.dialRequest !== undefined
    ? "dialRequest"
    : m.dialResponse !== undefined
    ? "dialResponse"
    : m.dialDataRequest !== undefined
    ? "dialDataRequest"
    : m.dialDataResponse !== undefined
    ? "dialDataResponse"
    : "empty"

/** The addresses of a request that parse (`undefined` for one that does not: it keeps its index). */
export const parseAddrs = (
  addrs: ReadonlyArray<Uint8Array>
): ReadonlyArray<Multiaddr.Multiaddr | undefined> =>
  addrs.slice(0, MAX_ADDRS).map((b) => {
    const r = Multiaddr.fromBytes(b)
    return Result.isSuccess(r) ? r.success : undefined
  })

// ---------------------------------------------------------------------------
// AutoNAT v1 (autonat/README.md §Protocol), proto2 as in the spec

const protoV1 = Protobuf.define(`
syntax = "proto2";

message Message {
  enum MessageType {
    DIAL = 0;
    DIAL_RESPONSE = 1;
  }

  enum ResponseStatus {
    OK = 0;
    E_DIAL_ERROR = 100;
    E_DIAL_REFUSED = 101;
    E_BAD_REQUEST = 200;
    E_INTERNAL_ERROR = 300;
  }

  message PeerInfo {
    optional bytes id = 1;
    repeated bytes addrs = 2;
  }

  message Dial {
    optional PeerInfo peer = 1;
  }

  message DialResponse {
    optional ResponseStatus status = 1;
    optional string statusText = 2;
    optional bytes addr = 3;
  }

  optional MessageType type = 1;
  optional Dial dial = 2;
  optional DialResponse dialResponse = 3;
}
`)

export const V1Type = { DIAL: 0, DIAL_RESPONSE: 1 } as const
export const V1Status = {
  OK: 0,
  E_DIAL_ERROR: 100,
  E_DIAL_REFUSED: 101,
  E_BAD_REQUEST: 200,
  E_INTERNAL_ERROR: 300
} as const

export interface V1Message {
  readonly type?: number
  readonly dial?: { readonly peer?: { readonly id?: Uint8Array; readonly addrs: ReadonlyArray<Uint8Array> } }
  readonly dialResponse?: { readonly status?: number; readonly statusText?: string; readonly addr?: Uint8Array }
}

export const V1Message = protoV1.codec<V1Message>("Message")
