/**
 * Identity: the node's own key pair and peer id (peer-ids spec §Peer Ids).
 * Every layer that signs (Noise handshake payload, identify's signed peer
 * record) reads it from here.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import * as Keys from "./Keys.ts"
import * as PeerId from "./PeerId.ts"

export interface IdentityShape {
  readonly privateKey: Keys.PrivateKey
  readonly publicKey: Keys.PublicKey
  readonly peerId: PeerId.PeerId
}

export const make = (privateKey: Keys.PrivateKey): IdentityShape => ({
  privateKey,
  publicKey: privateKey.publicKey,
  peerId: PeerId.fromPublicKey(privateKey.publicKey)
})

export class Identity extends Context.Service<Identity, IdentityShape>()("effect-libp2p/Identity") {}

/** An identity from a given private key. */
export const layer = (privateKey: Keys.PrivateKey): Layer.Layer<Identity> =>
  Layer.sync(Identity, () => make(privateKey))

/** A fresh Ed25519 identity. */
export const layerEd25519: Layer.Layer<Identity, Keys.KeyError> = Layer.effect(
  Identity,
  Effect.map(Keys.generate("Ed25519"), make)
)
