/**
 * The daemon control protocol's messages (go-libp2p-daemon `pb/p2pd.proto`,
 * `specs/CONTROL.md`, `DHT.md`, `PUBSUB.md`, `CM.md`), plus the two
 * extensions clients use: js's `PEERSTORE` request (`@libp2p/daemon-protocol`,
 * type 9, `peerStore` fields 9/8) and `REMOVE_STREAM_HANDLER` (type 10,
 * `removeStreamHandler` field 10, the shape of `StreamHandlerRequest`).
 * Each message is varint-length-prefixed on the control connection.
 *
 * @since 0.2.0
 */
import * as Protobuf from "../core/Protobuf.ts"

/** Largest request read from a control connection (go's `network.MessageSizeMax`, js's LIMIT: 4 MiB). */
export const MAX_REQUEST_SIZE = 4 * 1024 * 1024

const proto = Protobuf.define(`
syntax = "proto2";
message Request {
  enum Type {
    IDENTIFY = 0; CONNECT = 1; STREAM_OPEN = 2; STREAM_HANDLER = 3; DHT = 4; LIST_PEERS = 5;
    CONNMANAGER = 6; DISCONNECT = 7; PUBSUB = 8; PEERSTORE = 9; REMOVE_STREAM_HANDLER = 10;
  }
  required Type type = 1;
  optional ConnectRequest connect = 2;
  optional StreamOpenRequest streamOpen = 3;
  optional StreamHandlerRequest streamHandler = 4;
  optional DHTRequest dht = 5;
  optional ConnManagerRequest connManager = 6;
  optional DisconnectRequest disconnect = 7;
  optional PSRequest pubsub = 8;
  optional PeerstoreRequest peerStore = 9;
  optional StreamHandlerRequest removeStreamHandler = 10;
}
message Response {
  enum Type { OK = 0; ERROR = 1; }
  required Type type = 1;
  optional ErrorResponse error = 2;
  optional StreamInfo streamInfo = 3;
  optional IdentifyResponse identify = 4;
  optional DHTResponse dht = 5;
  repeated PeerInfo peers = 6;
  optional PSResponse pubsub = 7;
  optional PeerstoreResponse peerStore = 8;
}
message IdentifyResponse { required bytes id = 1; repeated bytes addrs = 2; }
message ConnectRequest { required bytes peer = 1; repeated bytes addrs = 2; optional int64 timeout = 3; }
message StreamOpenRequest { required bytes peer = 1; repeated string proto = 2; optional int64 timeout = 3; }
message StreamHandlerRequest { required bytes addr = 1; repeated string proto = 2; }
message ErrorResponse { required string msg = 1; }
message StreamInfo { required bytes peer = 1; required bytes addr = 2; required string proto = 3; }
message DHTRequest {
  enum Type {
    FIND_PEER = 0; FIND_PEERS_CONNECTED_TO_PEER = 1; FIND_PROVIDERS = 2; GET_CLOSEST_PEERS = 3;
    GET_PUBLIC_KEY = 4; GET_VALUE = 5; SEARCH_VALUE = 6; PUT_VALUE = 7; PROVIDE = 8;
  }
  required Type type = 1;
  optional bytes peer = 2;
  optional bytes cid = 3;
  optional bytes key = 4;
  optional bytes value = 5;
  optional int32 count = 6;
  optional int64 timeout = 7;
}
message DHTResponse {
  enum Type { BEGIN = 0; VALUE = 1; END = 2; }
  required Type type = 1;
  optional PeerInfo peer = 2;
  optional bytes value = 3;
}
message PeerInfo { required bytes id = 1; repeated bytes addrs = 2; }
message ConnManagerRequest {
  enum Type { TAG_PEER = 0; UNTAG_PEER = 1; TRIM = 2; }
  required Type type = 1;
  optional bytes peer = 2;
  optional string tag = 3;
  optional int64 weight = 4;
}
message DisconnectRequest { required bytes peer = 1; }
message PSRequest {
  enum Type { GET_TOPICS = 0; LIST_PEERS = 1; PUBLISH = 2; SUBSCRIBE = 3; }
  required Type type = 1;
  optional string topic = 2;
  optional bytes data = 3;
}
message PSMessage {
  optional bytes from = 1;
  optional bytes data = 2;
  optional bytes seqno = 3;
  repeated string topicIDs = 4;
  optional bytes signature = 5;
  optional bytes key = 6;
}
message PSResponse { repeated string topics = 1; repeated bytes peerIDs = 2; }
message PeerstoreRequest {
  enum Type { UNSPECIFIED = 0; GET_PROTOCOLS = 1; GET_PEER_INFO = 2; }
  optional Type type = 1;
  optional bytes id = 2;
  repeated string protos = 3;
}
message PeerstoreResponse { optional PeerInfo peer = 1; repeated string protos = 2; }
`)

export const RequestType = {
  IDENTIFY: 0,
  CONNECT: 1,
  STREAM_OPEN: 2,
  STREAM_HANDLER: 3,
  DHT: 4,
  LIST_PEERS: 5,
  CONNMANAGER: 6,
  DISCONNECT: 7,
  PUBSUB: 8,
  PEERSTORE: 9,
  REMOVE_STREAM_HANDLER: 10
} as const

export const DhtType = {
  FIND_PEER: 0,
  FIND_PEERS_CONNECTED_TO_PEER: 1,
  FIND_PROVIDERS: 2,
  GET_CLOSEST_PEERS: 3,
  GET_PUBLIC_KEY: 4,
  GET_VALUE: 5,
  SEARCH_VALUE: 6,
  PUT_VALUE: 7,
  PROVIDE: 8
} as const

export const DhtResponseType = { BEGIN: 0, VALUE: 1, END: 2 } as const
export const ConnManagerType = { TAG_PEER: 0, UNTAG_PEER: 1, TRIM: 2 } as const
export const PubsubType = { GET_TOPICS: 0, LIST_PEERS: 1, PUBLISH: 2, SUBSCRIBE: 3 } as const
export const PeerstoreType = { UNSPECIFIED: 0, GET_PROTOCOLS: 1, GET_PEER_INFO: 2 } as const

export interface PeerInfo {
  readonly id: Uint8Array
  readonly addrs: ReadonlyArray<Uint8Array>
}

export interface StreamHandlerRequest {
  readonly addr: Uint8Array
  readonly proto: ReadonlyArray<string>
}

export interface DhtRequest {
  readonly type: number
  readonly peer?: Uint8Array
  readonly cid?: Uint8Array
  readonly key?: Uint8Array
  readonly value?: Uint8Array
  readonly count?: number
  readonly timeout?: bigint
}

export interface PubsubRequest {
  readonly type: number
  readonly topic?: string
  readonly data?: Uint8Array
}

export interface Request {
  readonly type: number
  readonly connect?: {
    readonly peer: Uint8Array
    readonly addrs: ReadonlyArray<Uint8Array>
    readonly timeout?: bigint
  }
  readonly streamOpen?: { readonly peer: Uint8Array; readonly proto: ReadonlyArray<string>; readonly timeout?: bigint }
  readonly streamHandler?: StreamHandlerRequest
  readonly dht?: DhtRequest
  readonly connManager?: {
    readonly type: number
    readonly peer?: Uint8Array
    readonly tag?: string
    readonly weight?: bigint
  }
  readonly disconnect?: { readonly peer: Uint8Array }
  readonly pubsub?: PubsubRequest
  readonly peerStore?: { readonly type?: number; readonly id?: Uint8Array; readonly protos: ReadonlyArray<string> }
  readonly removeStreamHandler?: StreamHandlerRequest
}

export interface DhtResponse {
  readonly type: number
  readonly peer?: PeerInfo
  readonly value?: Uint8Array
}

export interface StreamInfo {
  readonly peer: Uint8Array
  readonly addr: Uint8Array
  readonly proto: string
}

export interface Response {
  readonly type: 0 | 1
  readonly error?: { readonly msg: string }
  readonly streamInfo?: StreamInfo
  readonly identify?: PeerInfo
  readonly dht?: DhtResponse
  readonly peers?: ReadonlyArray<PeerInfo>
  readonly pubsub?: { readonly topics?: ReadonlyArray<string>; readonly peerIDs?: ReadonlyArray<Uint8Array> }
  readonly peerStore?: { readonly peer?: PeerInfo; readonly protos?: ReadonlyArray<string> }
}

export interface PSMessage {
  readonly from?: Uint8Array
  readonly data?: Uint8Array
  readonly seqno?: Uint8Array
  readonly topicIDs: ReadonlyArray<string>
  readonly signature?: Uint8Array
  readonly key?: Uint8Array
}

export const RequestCodec = proto.codec<Request>("Request")
export const ResponseCodec = proto.codec<Response>("Response")
export const DhtResponseCodec = proto.codec<DhtResponse>("DHTResponse")
export const StreamInfoCodec = proto.codec<StreamInfo>("StreamInfo")
export const PSMessageCodec = proto.codec<PSMessage>("PSMessage")

/** `Response { type: OK }` with the given fields. */
export const ok = (fields: Omit<Response, "type"> = {}): Response => ({ type: 0, ...fields })

/** `Response { type: ERROR, error: { msg } }`: what go's `errorResponseString` writes. */
export const error = (msg: string): Response => ({ type: 1, error: { msg } })

/** go's text for a request without the parameters its type needs. */
export const MALFORMED = "Malformed request; missing parameters"
