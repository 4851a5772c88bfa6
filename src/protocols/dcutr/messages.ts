/**
 * DCUtR's wire message (relay/DCUtR.md §RPC messages): `HolePunch { type,
 * ObsAddrs }`, varint length-prefixed, at most 4 KiB. Pure code, no Effects;
 * other folders import `Dcutr.ts`, which re-exports what they need.
 *
 * Decoding is strict where the spec is and bounded where it is silent: an
 * unknown `type` or a bad protobuf is `Malformed`, more than
 * {@link MAX_ADDRS} addresses is `TooManyAddresses` (a 4 KiB message can
 * still carry ~2,000 empty entries); an entry that is not a valid binary
 * multiaddr is skipped, as go-libp2p does.
 *
 * @since 0.2.0
 */
import { Result } from "effect"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as Protobuf from "../../core/Protobuf.ts"

/** Largest message accepted, length prefix excluded (§RPC messages: implementations SHOULD refuse more than 4 KiB). */
export const MAX_MESSAGE_SIZE = 4096

/** Most `ObsAddrs` entries accepted in one message; a message with more is refused. */
export const MAX_ADDRS = 64

/** `HolePunch.Type`. */
export const CONNECT = 100
export const SYNC = 300
export type MessageType = typeof CONNECT | typeof SYNC

const proto = Protobuf.define(`
syntax = "proto2";
package holepunch.pb;
message HolePunch {
  enum Type {
    CONNECT = 100;
    SYNC = 300;
  }
  required Type type = 1;
  repeated bytes ObsAddrs = 2;
}`)

interface Wire {
  readonly type: number
  readonly ObsAddrs: ReadonlyArray<Uint8Array>
}

const codec = proto.codec<Wire>("holepunch.pb.HolePunch")

export interface HolePunch {
  readonly type: MessageType
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
}

/** Why a message was refused. */
export type DecodeFailure =
  | { readonly _tag: "Malformed"; readonly message: string }
  | { readonly _tag: "TooManyAddresses"; readonly count: number }

export const encode = (msg: HolePunch): Uint8Array =>
  codec.encode({ type: msg.type, ObsAddrs: msg.addrs.map(Multiaddr.toBytes) })

export const decode = (bytes: Uint8Array): Result.Result<HolePunch, DecodeFailure> => {
  const wire = codec.decode(bytes)
  if (Result.isFailure(wire)) return Result.fail({ _tag: "Malformed", message: wire.failure.message })
  const { type, ObsAddrs } = wire.success
  if (type !== CONNECT && type !== SYNC) return Result.fail({ _tag: "Malformed", message: `unknown type ${type}` })
  if (ObsAddrs.length > MAX_ADDRS) return Result.fail({ _tag: "TooManyAddresses", count: ObsAddrs.length })
  const addrs: Array<Multiaddr.Multiaddr> = []
  for (const raw of ObsAddrs) {
    const ma = Multiaddr.fromBytes(raw)
    if (Result.isSuccess(ma)) addrs.push(ma.success)
  }
  return Result.succeed({ type, addrs })
}
