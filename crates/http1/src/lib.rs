//! A minimal blocking HTTP/1.1 client: the wire format over any
//! `Read + Write` stream ([`exchange`], [`Request`], [`read_response`]), and
//! plain-TCP requests with timeouts ([`tcp_round_trip`], [`get`]).
//!
//! Pebble's unix socket, the charm's HTTP probes and Synapse's admin API on
//! localhost need nothing more than one request per connection, so this
//! stays a few hundred lines instead of an async HTTP stack.

pub mod tcp;
pub mod wire;

pub use tcp::{get, tcp_round_trip, TcpError};
pub use wire::{decode_chunked, exchange, read_response, Request, Response};
