// AutoNAT v2 (go-libp2p p2p/protocol/autonatv2) for the go peer (wt-autonat).
//
// Config: autonat?: { allowPrivateAddrs?: boolean } — an autonatv2.AutoNAT started on the main
// node: its server answers dial requests (dialing back from a second host with its own peer id,
// as go does), its client asks connected peers that speak the protocol.
//
// Commands:
//
//	autonatCheck {addrs:[multiaddr], sendDialData=true, timeoutMs=20000}
//	    → {addr, idx, reachability: "public"|"private"|"unknown", allAddrsRefused}
package main

import (
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	ma "github.com/multiformats/go-multiaddr"
)

type autonatConfig struct {
	AllowPrivateAddrs bool `json:"allowPrivateAddrs"`
}

var autonatMain *autonatv2.AutoNAT

func startAutonat(c *autonatConfig) error {
	if c == nil {
		return nil
	}
	dc := services
	dc.PrivateKey, dc.Listen, dc.Transports = "", nil, []string{"tcp"}
	dc.Holepunch = nil // the dial-back host punches no holes
	opts, err := options(dc)
	if err != nil {
		return err
	}
	dialer, err := libp2p.New(append(opts, libp2p.NoListenAddrs)...)
	if err != nil {
		return err
	}
	var anOpts []autonatv2.AutoNATOption
	if c.AllowPrivateAddrs {
		anOpts = append(anOpts, autonatv2.AllowPrivateAddrs)
	}
	an, err := autonatv2.New(dialer, anOpts...)
	if err != nil {
		return err
	}
	if err := an.Start(node); err != nil {
		return err
	}
	autonatMain = an
	return nil
}

func reachabilityText(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	default:
		return "unknown"
	}
}

func init() {
	commands["autonatCheck"] = func(ctx context.Context, a args) (map[string]any, error) {
		if autonatMain == nil {
			return nil, errors.New("no autonat (config.autonat)")
		}
		sendData := true
		if v, ok := a["sendDialData"].(bool); ok {
			sendData = v
		}
		var reqs []autonatv2.Request
		for _, s := range a.strs("addrs") {
			addr, err := ma.NewMultiaddr(s)
			if err != nil {
				return nil, err
			}
			reqs = append(reqs, autonatv2.Request{Addr: addr, SendDialData: sendData})
		}
		ctx, cancel := context.WithTimeout(ctx, time.Duration(a.num("timeoutMs", 20000))*time.Millisecond)
		defer cancel()
		res, err := autonatMain.GetReachability(ctx, reqs)
		if err != nil {
			return nil, err
		}
		addr := ""
		if res.Addr != nil {
			addr = res.Addr.String()
		}
		return map[string]any{"addr": addr, "idx": res.Idx, "reachability": reachabilityText(res.Reachability),
			"allAddrsRefused": res.AllAddrsRefused}, nil
	}
}
