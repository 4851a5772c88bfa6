/**
 * Rendezvous's wire message (libp2p specs rendezvous/README.md §Protobuf): the
 * `.proto` text verbatim from the spec (proto2), the TypeScript shapes, a
 * codec and the size limits. Pure code, no Effects; other folders import
 * `Rendezvous.ts`.
 *
 * Every message is one varint length-prefixed `Message` (go-libp2p-rendezvous,
 * rust-libp2p and nim-libp2p frame it that way). Limits: a request read by the
 * server is at most {@link MAX_REQUEST_SIZE} (a `REGISTER` carries one signed
 * peer record, at most {@link MAX_SIGNED_RECORD_SIZE}); an answer read by the
 * client is at most {@link MAX_MESSAGE_SIZE} (rust-libp2p's bound, 1 MiB), and
 * the server fills a `DISCOVER_RESPONSE` only up to that size.
 *
 * @since 0.2.0
 */
import * as Protobuf from "../../core/Protobuf.ts"

/** Largest message a client reads (a `DISCOVER_RESPONSE`; rust-libp2p's `MAX_MESSAGE_LEN_BYTES`). */
export const MAX_MESSAGE_SIZE = 1024 * 1024

/** Largest signed peer record a registration may carry (a record of ~100 addresses fits). */
export const MAX_SIGNED_RECORD_SIZE = 8 * 1024

/** Largest request the server reads: a `REGISTER` with the largest record, a namespace and a TTL. */
export const MAX_REQUEST_SIZE = MAX_SIGNED_RECORD_SIZE + 1024

const proto = Protobuf.define(`
syntax = "proto2";

message Message {
  enum MessageType {
    REGISTER = 0;
    REGISTER_RESPONSE = 1;
    UNREGISTER = 2;
    DISCOVER = 3;
    DISCOVER_RESPONSE = 4;
  }

  enum ResponseStatus {
    OK                            = 0;
    E_INVALID_NAMESPACE           = 100;
    E_INVALID_SIGNED_PEER_RECORD  = 101;
    E_INVALID_TTL                 = 102;
    E_INVALID_COOKIE              = 103;
    E_NOT_AUTHORIZED              = 200;
    E_INTERNAL_ERROR              = 300;
    E_UNAVAILABLE                 = 400;
  }

  message Register {
    optional string ns = 1;
    optional bytes signedPeerRecord = 2;
    optional uint64 ttl = 3; // in seconds
  }

  message RegisterResponse {
    optional ResponseStatus status = 1;
    optional string statusText = 2;
    optional uint64 ttl = 3; // in seconds
  }

  message Unregister {
    optional string ns = 1;
    // optional bytes id = 2; deprecated as per https://github.com/libp2p/specs/issues/335
  }

  message Discover {
    optional string ns = 1;
    optional uint64 limit = 2;
    optional bytes cookie = 3;
  }

  message DiscoverResponse {
    repeated Register registrations = 1;
    optional bytes cookie = 2;
    optional ResponseStatus status = 3;
    optional string statusText = 4;
  }

  optional MessageType type = 1;
  optional Register register = 2;
  optional RegisterResponse registerResponse = 3;
  optional Unregister unregister = 4;
  optional Discover discover = 5;
  optional DiscoverResponse discoverResponse = 6;
}
`)

/** `Message.MessageType`. */
export const MessageType = {
  REGISTER: 0,
  REGISTER_RESPONSE: 1,
  UNREGISTER: 2,
  DISCOVER: 3,
  DISCOVER_RESPONSE: 4
} as const
export type MessageType = typeof MessageType[keyof typeof MessageType]

/** `Message.ResponseStatus`. */
export const ResponseStatus = {
  OK: 0,
  E_INVALID_NAMESPACE: 100,
  E_INVALID_SIGNED_PEER_RECORD: 101,
  E_INVALID_TTL: 102,
  E_INVALID_COOKIE: 103,
  E_NOT_AUTHORIZED: 200,
  E_INTERNAL_ERROR: 300,
  E_UNAVAILABLE: 400
} as const
export type ResponseStatus = typeof ResponseStatus[keyof typeof ResponseStatus]

const statusNames = new Map<number, string>(Object.entries(ResponseStatus).map(([name, n]) => [n, name]))

/** A status as its spec name (`E_INVALID_TTL`), or `UNKNOWN` for a number the spec does not define. */
export const statusName = (status: number): string => statusNames.get(status) ?? "UNKNOWN"

export interface Register {
  readonly ns?: string
  /** A signed envelope (RFC 0002) holding the registering peer's record (RFC 0003). */
  readonly signedPeerRecord?: Uint8Array
  /** Seconds. */
  readonly ttl?: bigint
}

export interface RegisterResponse {
  readonly status?: number
  readonly statusText?: string
  readonly ttl?: bigint
}

export interface Unregister {
  readonly ns?: string
}

export interface Discover {
  readonly ns?: string
  readonly limit?: bigint
  readonly cookie?: Uint8Array
}

export interface DiscoverResponse {
  readonly registrations: ReadonlyArray<Register>
  readonly cookie?: Uint8Array
  readonly status?: number
  readonly statusText?: string
}

export interface RendezvousMessage {
  /** A {@link MessageType}; absent or unknown in a malformed message. */
  readonly type?: number
  readonly register?: Register
  readonly registerResponse?: RegisterResponse
  readonly unregister?: Unregister
  readonly discover?: Discover
  readonly discoverResponse?: DiscoverResponse
}

export const RendezvousMessage = proto.codec<RendezvousMessage>("Message")
export const RegisterCodec = proto.codec<Register>("Message.Register")

/** The encoded size of one registration inside a `DiscoverResponse` (field tag, length, body). */
export const registrationSize = (r: Register): number => {
  const n = RegisterCodec.encode(r).byteLength
  return 1 + varintSize(n) + n
}

const varintSize = (n: number): number => {
  let size = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    size++
  }
  return size
}
