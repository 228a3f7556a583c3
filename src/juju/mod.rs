//! The Juju side of the charm: the hook context, typed events and hook tools.

pub mod cache;
pub mod context;
pub mod event;
pub mod hints;
pub mod process;
pub mod tools;

pub use cache::CachedTools;
pub use context::HookContext;
pub use event::{Event, RelationHook, RelationId};
pub use tools::{Databag, HookTools, Status, StatusKind, ToolError, ToolErrorKind, ToolResult};
