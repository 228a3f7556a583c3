//! Unit-test support: one in-memory model of Juju ([`juju`]: JujuLocal's model and
//! hook tools, run in-process) and an in-memory Pebble ([`pebble`]). Tests read as
//! state in → event → state out. Real-component tests live in `tests/`.

pub mod juju;
pub mod pebble;

pub use self::juju::Juju;
pub use self::pebble::{FakePebble, FakePod};
