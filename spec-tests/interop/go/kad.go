// Kad-DHT (go-libp2p-kad-dht) for the go peer: the same commands as the js peer's js-kad.mjs, so
// JsKad.ts drives both.
//
// Config: kad?: { clientMode?: boolean (default false: server, dht.Mode(dht.ModeServer); go's
// default ModeAuto would stay a client on loopback, never seeing itself publicly reachable),
// protocol?: string (default "/ipfs/kad/1.0.0"; go takes a prefix, so it must end in
// "/kad/1.0.0") }. go-libp2p-kad-dht's plain IpfsDHT filters no addresses and no routing-table
// peers by default (AddressFilter nil, EmptyRTFilter, EmptyQueryFilter): 127.0.0.1 peers are kept
// (only the dual DHT's LAN/WAN split filters them).
//
// Commands (`node`: absent = the main node, a number = that node of `kadStart`); keys and values are
// hex, CIDs are hex of the CID's bytes; `timeoutMs` bounds each (default 20 s):
//
//	kadStart {count, protocol?, dial?: [addr], mesh=3} → {nodes:[{peerId, addrs}]}  `count` more go
//	    hosts in this process, each a DHT server on 127.0.0.1/tcp/0 dialing every address in `dial`
//	    and `mesh` of the nodes started before it
//	kadDial {node?, addr} → {}
//	kadTable {node?} → {peers:[peerId]}
//	kadFindPeer {node?, peerId} → {peerId, addrs}
//	kadClosest {node?, key} → {peers:[peerId]}
//	kadPut {node?, key, value} → {}               kadGet {node?, key} → {value}  (quorum 1)
//	kadProvide {node?, cid} → {}                  kadFindProviders {node?, cid, limit=20} → {providers:[{peerId, addrs}]}
//	kadStop → {}                                  stop the kadStart nodes
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

type kadConfig struct {
	ClientMode bool   `json:"clientMode"`
	Protocol   string `json:"protocol"`
}

type kadNode struct {
	h host.Host
	d *dht.IpfsDHT
}

var (
	kadMain  *kadNode
	kadMu    sync.Mutex
	kadNodes []*kadNode
)

func newDHT(h host.Host, c kadConfig) (*dht.IpfsDHT, error) {
	mode := dht.ModeServer
	if c.ClientMode {
		mode = dht.ModeClient
	}
	opts := []dht.Option{dht.Mode(mode)}
	if c.Protocol != "" {
		prefix, ok := strings.CutSuffix(c.Protocol, "/kad/1.0.0")
		if !ok {
			return nil, fmt.Errorf("kad protocol %q: go-libp2p-kad-dht takes a prefix, the protocol must end in /kad/1.0.0", c.Protocol)
		}
		opts = append(opts, dht.ProtocolPrefix(protocol.ID(prefix)))
	}
	return dht.New(h, opts...)
}

func startKad(c *kadConfig) error {
	if c == nil {
		return nil
	}
	d, err := newDHT(node, *c)
	if err != nil {
		return err
	}
	kadMain = &kadNode{h: node, d: d}
	return nil
}

func kadPick(a args) (*kadNode, error) {
	if n, ok := a["node"].(float64); ok {
		kadMu.Lock()
		defer kadMu.Unlock()
		if int(n) < 0 || int(n) >= len(kadNodes) {
			return nil, fmt.Errorf("no kad node %d", int(n))
		}
		return kadNodes[int(n)], nil
	}
	if kadMain == nil {
		return nil, errors.New("no kad service (config.kad)")
	}
	return kadMain, nil
}

func hostAddrs(h host.Host) []string {
	suffix := "/p2p/" + h.ID().String()
	out := []string{}
	for _, a := range h.Addrs() {
		out = append(out, a.String()+suffix)
	}
	return out
}

func infoJSON(ai peer.AddrInfo) map[string]any {
	return map[string]any{"peerId": ai.ID.String(), "addrs": addrStrings(ai.Addrs)}
}

func connectAddr(ctx context.Context, h host.Host, addr string) error {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return err
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return err
	}
	return h.Connect(ctx, *ai)
}

// kadCommand wraps a kad command: the node it targets and a context bounded by timeoutMs.
func kadCommand(fn func(ctx context.Context, n *kadNode, a args) (map[string]any, error)) command {
	return func(ctx context.Context, a args) (map[string]any, error) {
		n, err := kadPick(a)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, time.Duration(a.num("timeoutMs", 20_000))*time.Millisecond)
		defer cancel()
		return fn(ctx, n, a)
	}
}

func hexArg(a args, k string) ([]byte, error) {
	b, err := hex.DecodeString(a.str(k))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	return b, nil
}

func cidArg(a args) (cid.Cid, error) {
	b, err := hexArg(a, "cid")
	if err != nil {
		return cid.Undef, err
	}
	return cid.Cast(b)
}

func init() {
	commands["kadStart"] = func(ctx context.Context, a args) (map[string]any, error) {
		created := []map[string]any{}
		mesh := int(a.num("mesh", 3))
		for i := 0; i < int(a.num("count", 0)); i++ {
			c := services
			c.PrivateKey, c.Listen, c.Transports = "", []string{"/ip4/127.0.0.1/tcp/0"}, []string{"tcp"}
			opts, err := options(c)
			if err != nil {
				return nil, err
			}
			h, err := libp2p.New(opts...)
			if err != nil {
				return nil, err
			}
			d, err := newDHT(h, kadConfig{Protocol: a.str("protocol")})
			if err != nil {
				h.Close()
				return nil, err
			}
			kadMu.Lock()
			before := append([]*kadNode{}, kadNodes...)
			kadNodes = append(kadNodes, &kadNode{h: h, d: d})
			kadMu.Unlock()
			for j := max(0, len(before)-mesh); j < len(before); j++ {
				if err := h.Connect(ctx, peer.AddrInfo{ID: before[j].h.ID(), Addrs: before[j].h.Addrs()}); err != nil {
					return nil, err
				}
			}
			for _, addr := range a.strs("dial") {
				if err := connectAddr(ctx, h, addr); err != nil {
					return nil, err
				}
			}
			created = append(created, map[string]any{"peerId": h.ID().String(), "addrs": hostAddrs(h)})
		}
		return map[string]any{"nodes": created}, nil
	}
	commands["kadDial"] = kadCommand(func(ctx context.Context, n *kadNode, a args) (map[string]any, error) {
		return map[string]any{}, connectAddr(ctx, n.h, a.str("addr"))
	})
	commands["kadTable"] = kadCommand(func(_ context.Context, n *kadNode, _ args) (map[string]any, error) {
		return map[string]any{"peers": peerStrings(n.d.RoutingTable().ListPeers())}, nil
	})
	commands["kadFindPeer"] = kadCommand(func(ctx context.Context, n *kadNode, a args) (map[string]any, error) {
		p, err := peer.Decode(a.str("peerId"))
		if err != nil {
			return nil, err
		}
		ai, err := n.d.FindPeer(ctx, p)
		if err != nil {
			return nil, err
		}
		return infoJSON(ai), nil
	})
	commands["kadClosest"] = kadCommand(func(ctx context.Context, n *kadNode, a args) (map[string]any, error) {
		key, err := hexArg(a, "key")
		if err != nil {
			return nil, err
		}
		ps, err := n.d.GetClosestPeers(ctx, string(key))
		if err != nil {
			return nil, err
		}
		return map[string]any{"peers": peerStrings(ps)}, nil
	})
	commands["kadPut"] = kadCommand(func(ctx context.Context, n *kadNode, a args) (map[string]any, error) {
		key, err := hexArg(a, "key")
		if err != nil {
			return nil, err
		}
		value, err := hexArg(a, "value")
		if err != nil {
			return nil, err
		}
		return map[string]any{}, n.d.PutValue(ctx, string(key), value)
	})
	commands["kadGet"] = kadCommand(func(ctx context.Context, n *kadNode, a args) (map[string]any, error) {
		key, err := hexArg(a, "key")
		if err != nil {
			return nil, err
		}
		v, err := n.d.GetValue(ctx, string(key), dht.Quorum(1))
		if err != nil {
			return nil, err
		}
		return map[string]any{"value": hex.EncodeToString(v)}, nil
	})
	commands["kadProvide"] = kadCommand(func(ctx context.Context, n *kadNode, a args) (map[string]any, error) {
		c, err := cidArg(a)
		if err != nil {
			return nil, err
		}
		return map[string]any{}, n.d.Provide(ctx, c, true)
	})
	commands["kadFindProviders"] = kadCommand(func(ctx context.Context, n *kadNode, a args) (map[string]any, error) {
		c, err := cidArg(a)
		if err != nil {
			return nil, err
		}
		out := []map[string]any{}
		for ai := range n.d.FindProvidersAsync(ctx, c, int(a.num("limit", 20))) {
			out = append(out, infoJSON(ai))
		}
		return map[string]any{"providers": out}, nil
	})
	commands["kadStop"] = func(context.Context, args) (map[string]any, error) {
		kadMu.Lock()
		nodes := kadNodes
		kadNodes = nil
		kadMu.Unlock()
		for _, n := range nodes {
			n.d.Close()
			n.h.Close()
		}
		return map[string]any{}, nil
	}
}
