//! The charm executable: Juju runs it as `dispatch` for every hook and action.

use std::process::ExitCode;

use tracing_subscriber::fmt::writer::MakeWriterExt;

use synapse_k8s_charm::charm;
use synapse_k8s_charm::juju::{
    event::ProcessEnv,
    process::{ProcessTools, Spawn},
    CachedTools, HookContext,
};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Juju records stdout at DEBUG and stderr at WARNING: route by severity.
        .with_writer(
            std::io::stderr
                .with_max_level(tracing::Level::WARN)
                .or_else(std::io::stdout),
        )
        .with_ansi(false)
        .without_time()
        .init();
    let ctx = match HookContext::from_env(&ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot read the hook context: {e}");
            return ExitCode::from(2);
        }
    };
    let tools = CachedTools::new(ProcessTools::new(Spawn));
    let charm_dir = std::env::current_dir().unwrap_or_default();
    match charm::dispatch(&ctx, &tools, &charm::PodWorkloads::default(), &charm_dir) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            // Unexpected: exit non-zero so Juju retries; print the whole chain once.
            tracing::error!(
                "{} failed: {}",
                ctx.event.name(),
                synapse_k8s_charm::error::chain(&e)
            );
            ExitCode::FAILURE
        }
    }
}
