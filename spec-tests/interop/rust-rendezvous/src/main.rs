//! A rust-libp2p (0.57) rendezvous peer for our interop tests, driven by its arguments and reporting
//! on stdout as JSON lines (spec-tests/interop/rendezvous-rust.test.ts):
//!
//!   rust-rendezvous-peer server
//!     {"event":"ready","peerId","addrs":[".../p2p/<id>"]}
//!     {"event":"peer:registered","peerId","namespace","ttl"}   (rendezvous::server::Event::PeerRegistered)
//!     {"event":"discover:served","peerId","count"}
//!   rust-rendezvous-peer client <point multiaddr with /p2p> <namespace>
//!     {"event":"ready",...}, then registers in <namespace> at the point (its record carries its listen
//!     address) and discovers there every second with the last cookie:
//!     {"event":"registered","namespace","ttl"}
//!     {"event":"discovered","registrations":[{"peerId","addrs","namespace","ttl"}],"cookieLength"}
//!     {"event":"error","what","error"}
//!
//! TCP, Noise, Yamux; rust-libp2p's default rendezvous server configuration (TTL 2 h to 72 h).
//! Closing stdin does not stop it: the test kills it.

use std::time::Duration;

use futures::StreamExt;
use libp2p::{
    multiaddr::Protocol,
    noise, ping, rendezvous,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux, Multiaddr, PeerId,
};

#[derive(NetworkBehaviour)]
struct Server {
    rendezvous: rendezvous::server::Behaviour,
    ping: ping::Behaviour,
}

#[derive(NetworkBehaviour)]
struct Client {
    rendezvous: rendezvous::client::Behaviour,
    ping: ping::Behaviour,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(","))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") => server().await,
        Some("client") if args.len() == 4 => client(args[2].parse()?, args[3].clone()).await,
        _ => {
            eprintln!("usage: rust-rendezvous-peer server | client <point-multiaddr> <namespace>");
            std::process::exit(2)
        }
    }
}

async fn server() -> Result<(), Box<dyn std::error::Error>> {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)?
        .with_behaviour(|_| Server {
            rendezvous: rendezvous::server::Behaviour::new(rendezvous::server::Config::default()),
            ping: ping::Behaviour::new(ping::Config::new()),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let me = *swarm.local_peer_id();
    while let Some(event) = swarm.next().await {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let addr = address.with(Protocol::P2p(me)).to_string();
                println!(r#"{{"event":"ready","peerId":{},"addrs":[{}]}}"#, quote(&me.to_string()), quote(&addr));
            }
            SwarmEvent::Behaviour(ServerEvent::Rendezvous(rendezvous::server::Event::PeerRegistered {
                peer,
                registration,
            })) => println!(
                r#"{{"event":"peer:registered","peerId":{},"namespace":{},"ttl":{}}}"#,
                quote(&peer.to_string()),
                quote(&registration.namespace.to_string()),
                registration.ttl
            ),
            SwarmEvent::Behaviour(ServerEvent::Rendezvous(rendezvous::server::Event::DiscoverServed {
                enquirer,
                registrations,
            })) => println!(
                r#"{{"event":"discover:served","peerId":{},"count":{}}}"#,
                quote(&enquirer.to_string()),
                registrations.len()
            ),
            SwarmEvent::Behaviour(ServerEvent::Rendezvous(other)) => {
                println!(r#"{{"event":"server:other","detail":{}}}"#, quote(&format!("{other:?}")))
            }
            _ => {}
        }
    }
    Ok(())
}

async fn client(point_addr: Multiaddr, namespace: String) -> Result<(), Box<dyn std::error::Error>> {
    let point: PeerId = match point_addr.iter().last() {
        Some(Protocol::P2p(id)) => id,
        _ => return Err("the point's address must end in /p2p/<id>".into()),
    };
    let ns = rendezvous::Namespace::new(namespace.clone())?;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key| Client {
            rendezvous: rendezvous::client::Behaviour::new(key.clone()),
            ping: ping::Behaviour::new(ping::Config::new()),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let me = *swarm.local_peer_id();
    let mut listening = false;
    let mut connected = false;
    let mut registered = false;
    let mut cookie: Option<rendezvous::Cookie> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            event = swarm.select_next_some() => {
                match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        swarm.add_external_address(address.clone());
                        let addr = address.with(Protocol::P2p(me)).to_string();
                        println!(r#"{{"event":"ready","peerId":{},"addrs":[{}]}}"#, quote(&me.to_string()), quote(&addr));
                        if !listening {
                            listening = true;
                            swarm.dial(point_addr.clone())?;
                        }
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == point && !connected => {
                        connected = true;
                        if let Err(e) = swarm.behaviour_mut().rendezvous.register(ns.clone(), point, None) {
                            println!(r#"{{"event":"error","what":"register","error":{}}}"#, quote(&e.to_string()));
                        }
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        println!(r#"{{"event":"error","what":"dial","error":{}}}"#, quote(&error.to_string()));
                    }
                    SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::Registered { namespace, ttl, .. })) => {
                        registered = true;
                        println!(r#"{{"event":"registered","namespace":{},"ttl":{}}}"#, quote(&namespace.to_string()), ttl);
                    }
                    SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::RegisterFailed { error, .. })) => {
                        println!(r#"{{"event":"error","what":"register","error":{}}}"#, quote(&format!("{error:?}")));
                    }
                    SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::Discovered { registrations, cookie: next, .. })) => {
                        let regs = list(registrations.iter().map(|r| format!(
                            r#"{{"peerId":{},"addrs":{},"namespace":{},"ttl":{}}}"#,
                            quote(&r.record.peer_id().to_string()),
                            list(r.record.addresses().iter().map(|a| quote(&a.to_string()))),
                            quote(&r.namespace.to_string()),
                            r.ttl
                        )));
                        let len = next.clone().into_wire_encoding().len();
                        println!(r#"{{"event":"discovered","registrations":{},"cookieLength":{}}}"#, regs, len);
                        cookie = Some(next);
                    }
                    SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::DiscoverFailed { error, .. })) => {
                        println!(r#"{{"event":"error","what":"discover","error":{}}}"#, quote(&format!("{error:?}")));
                    }
                    _ => {}
                }
            }
            _ = tick.tick(), if registered => {
                swarm.behaviour_mut().rendezvous.discover(Some(ns.clone()), cookie.clone(), None, point);
            }
        }
    }
}
