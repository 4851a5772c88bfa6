// Circuit relay v2 (go-libp2p's p2p/protocol/circuitv2) for the go peer: the same role as
// js-peer.mjs's relay block.
//
// Config: relay?: { server?: boolean } — server runs circuitv2/relay.New on the host (go's
// relay service otherwise waits for public reachability). The relay client transport is on in
// every go-libp2p host (EnableRelay is a default), so go dials /p2p-circuit addresses and
// accepts relayed connections as soon as it holds a reservation.
//
//	relayReserve {addr} → {expire (unix s), addrs, limitDurationMs, limitData, voucher:bool}
//	    client.Reserve on that relay (go verifies the voucher); go keeps no refresh loop here
//	relayReservations → {reservations:[peerId...]}   not exposed by go's relay: answers the peers
//	    that hold a connection tagged "relay-reservation" by it
//
// Streams opened by the harness commands on limited (relayed) connections need
// network.WithAllowLimitedConn; main.go's commands run with a context that carries it.
package main

import (
	"context"
	"errors"

	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
)

type relayConfig struct {
	Server bool `json:"server"`
}

var relayService *relay.Relay

func startRelay(c *relayConfig) error {
	if c == nil || !c.Server {
		return nil
	}
	r, err := relay.New(node)
	if err != nil {
		return err
	}
	relayService = r
	return nil
}

func init() {
	commands["relayReserve"] = func(ctx context.Context, a args) (map[string]any, error) {
		p, err := target(ctx, args{"addr": a.str("addr")})
		if err != nil {
			return nil, err
		}
		r, err := client.Reserve(ctx, node, node.Peerstore().PeerInfo(p))
		if err != nil {
			return nil, err
		}
		addrs := make([]string, 0, len(r.Addrs))
		for _, x := range r.Addrs {
			addrs = append(addrs, x.String())
		}
		return map[string]any{"expire": r.Expiration.Unix(), "addrs": addrs,
			"limitDurationMs": r.LimitDuration.Milliseconds(), "limitData": r.LimitData, "voucher": r.Voucher != nil}, nil
	}
	commands["relayReservations"] = func(_ context.Context, _ args) (map[string]any, error) {
		if relayService == nil {
			return nil, errors.New("no relay server (config.relay.server)")
		}
		out := []string{}
		for _, p := range node.Network().Peers() {
			if info := node.ConnManager().GetTagInfo(p); info != nil {
				if _, ok := info.Tags["relay-reservation"]; ok {
					out = append(out, p.String())
				}
			}
		}
		return map[string]any{"reservations": out}, nil
	}
}
