// Gossipsub (go-libp2p-pubsub) for the go peer: the same commands and events as js-peer.mjs's
// pubsub block, so JsPeer.pubsubOf drives both.
//
// Config: pubsub?: { router?: "gossipsub" (default) | "floodsub", heartbeatMs?: number (go's default
// 1000), floodPublish?: boolean (go's default true) }
//
//	{"event":"pubsub:message","topic","from","seqno","data":<base64>,"text":<utf-8>}
//	pubsubSubscribe {topic} → {}     pubsubUnsubscribe {topic} → {}
//	pubsubPublish {topic, text | base64} → {recipients:[peerId...]}  go's Publish reports no
//	    recipients: these are the topic's peers when publishing (go floods its own messages to all
//	    of them, WithFloodPublish's default)
//	pubsubPeers {topic} → {peers:[peerId...]}   pubsubMesh {topic} → {peers:[peerId...]} (tracked
//	    from the router's Graft/Prune trace events: go exposes no mesh accessor)
//	pubsubProtocol {peerId} → {protocol}   the protocol of go's outbound pubsub stream to that peer
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"math/big"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

type pubsubConfig struct {
	Router       string   `json:"router"`
	HeartbeatMs  *float64 `json:"heartbeatMs"`
	FloodPublish *bool    `json:"floodPublish"`
}

var (
	ps      *pubsub.PubSub
	psMu    sync.Mutex
	psTopic = map[string]*pubsub.Topic{}
	psSubs  = map[string]*pubsub.Subscription{}
	psMesh  = map[string]map[peer.ID]bool{}
	psProto = map[peer.ID]protocol.ID{}
)

// meshTracer keeps the mesh per topic and each peer's negotiated protocol; the rest is ignored.
type meshTracer struct{}

func (meshTracer) OnNewOutboundStream(p peer.ID, proto protocol.ID) {
	psMu.Lock()
	psProto[p] = proto
	psMu.Unlock()
}
func (meshTracer) OnClosedOutboundStream(peer.ID) {}
func (meshTracer) Join(string)                    {}
func (meshTracer) Leave(topic string) {
	psMu.Lock()
	delete(psMesh, topic)
	psMu.Unlock()
}
func (meshTracer) Graft(p peer.ID, topic string) {
	psMu.Lock()
	if psMesh[topic] == nil {
		psMesh[topic] = map[peer.ID]bool{}
	}
	psMesh[topic][p] = true
	psMu.Unlock()
}
func (meshTracer) Prune(p peer.ID, topic string) {
	psMu.Lock()
	delete(psMesh[topic], p)
	psMu.Unlock()
}
func (meshTracer) ValidateMessage(*pubsub.Message)                      {}
func (meshTracer) DeliverMessage(*pubsub.Message)                       {}
func (meshTracer) RejectMessage(*pubsub.Message, string)                {}
func (meshTracer) DuplicateMessage(*pubsub.Message)                     {}
func (meshTracer) ThrottlePeer(peer.ID)                                 {}
func (meshTracer) RecvRPC(*pubsub.RPC)                                  {}
func (meshTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (meshTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (meshTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (meshTracer) UndeliverableMessage(*pubsub.Message)                 {}

func startPubsub(ctx context.Context, c *pubsubConfig) error {
	if c == nil {
		return nil
	}
	if c.Router == "floodsub" {
		var err error
		ps, err = pubsub.NewFloodSub(ctx, node, pubsub.WithRawTracer(meshTracer{}))
		return err
	}
	if c.Router != "" && c.Router != "gossipsub" {
		return errors.New("pubsub: the go peer runs gossipsub or floodsub, not " + c.Router)
	}
	params := pubsub.DefaultGossipSubParams()
	if c.HeartbeatMs != nil {
		params.HeartbeatInterval = time.Duration(*c.HeartbeatMs * float64(time.Millisecond))
	}
	opts := []pubsub.Option{pubsub.WithGossipSubParams(params), pubsub.WithRawTracer(meshTracer{})}
	if c.FloodPublish != nil {
		opts = append(opts, pubsub.WithFloodPublish(*c.FloodPublish))
	}
	var err error
	ps, err = pubsub.NewGossipSub(ctx, node, opts...)
	return err
}

func pubsubTopic(name string) (*pubsub.Topic, error) {
	if ps == nil {
		return nil, errors.New("no pubsub service (config.pubsub)")
	}
	psMu.Lock()
	defer psMu.Unlock()
	if t := psTopic[name]; t != nil {
		return t, nil
	}
	t, err := ps.Join(name)
	if err != nil {
		return nil, err
	}
	psTopic[name] = t
	return t, nil
}

func reportMessages(sub *pubsub.Subscription) {
	for {
		m, err := sub.Next(context.Background())
		if err != nil {
			return
		}
		var from, seqno any
		if len(m.From) > 0 {
			if id, err := peer.IDFromBytes(m.From); err == nil {
				from = id.String()
			}
		}
		if len(m.Seqno) > 0 {
			seqno = new(big.Int).SetBytes(m.Seqno).String()
		}
		emit(map[string]any{"event": "pubsub:message", "topic": m.GetTopic(), "from": from, "seqno": seqno,
			"data": base64.StdEncoding.EncodeToString(m.Data), "text": string(m.Data)})
	}
}

func peerStrings(ids []peer.ID) []string {
	out := make([]string, 0, len(ids))
	for _, p := range ids {
		out = append(out, p.String())
	}
	return out
}

func init() {
	commands["pubsubSubscribe"] = func(_ context.Context, a args) (map[string]any, error) {
		t, err := pubsubTopic(a.str("topic"))
		if err != nil {
			return nil, err
		}
		psMu.Lock()
		defer psMu.Unlock()
		if psSubs[a.str("topic")] == nil {
			sub, err := t.Subscribe()
			if err != nil {
				return nil, err
			}
			psSubs[a.str("topic")] = sub
			go reportMessages(sub)
		}
		return map[string]any{}, nil
	}
	commands["pubsubUnsubscribe"] = func(_ context.Context, a args) (map[string]any, error) {
		psMu.Lock()
		defer psMu.Unlock()
		if sub := psSubs[a.str("topic")]; sub != nil {
			sub.Cancel()
			delete(psSubs, a.str("topic"))
		}
		return map[string]any{}, nil
	}
	commands["pubsubPublish"] = func(ctx context.Context, a args) (map[string]any, error) {
		t, err := pubsubTopic(a.str("topic"))
		if err != nil {
			return nil, err
		}
		data := []byte(a.str("text"))
		if b64, ok := a["base64"].(string); ok {
			if data, err = base64.StdEncoding.DecodeString(b64); err != nil {
				return nil, err
			}
		}
		recipients := peerStrings(t.ListPeers())
		return map[string]any{"recipients": recipients}, t.Publish(ctx, data)
	}
	commands["pubsubPeers"] = func(_ context.Context, a args) (map[string]any, error) {
		if ps == nil {
			return nil, errors.New("no pubsub service (config.pubsub)")
		}
		return map[string]any{"peers": peerStrings(ps.ListPeers(a.str("topic")))}, nil
	}
	commands["pubsubMesh"] = func(_ context.Context, a args) (map[string]any, error) {
		psMu.Lock()
		defer psMu.Unlock()
		out := []string{}
		for p := range psMesh[a.str("topic")] {
			out = append(out, p.String())
		}
		return map[string]any{"peers": out}, nil
	}
	commands["pubsubProtocol"] = func(_ context.Context, a args) (map[string]any, error) {
		p, err := peer.Decode(a.str("peerId"))
		if err != nil {
			return nil, err
		}
		psMu.Lock()
		defer psMu.Unlock()
		return map[string]any{"protocol": nullable(string(psProto[p]))}, nil
	}
}
