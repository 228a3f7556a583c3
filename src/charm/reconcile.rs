//! The reconcile: one line per concern, in the order a dispatch needs them. Each
//! concern reads its inputs once, decides in pure code and applies only what differs.

use crate::error::CharmResult;
use crate::juju::hints::UnitHints;
use crate::juju::{HookContext, HookTools, RelationId, Status};
use crate::peers::{self, Peers};
use crate::relations::{database, observability};
use crate::status;
use crate::synapse::config::SynapseConfig;
use crate::workload::Workloads;
use crate::{keys, nginx, synapse};

use super::work::Work;

/// One full reconcile. Expected problems become the returned status; unexpected ones
/// an error (the hook fails and Juju retries it).
pub fn reconcile(
    ctx: &HookContext,
    tools: &dyn HookTools,
    workloads: &dyn Workloads,
    hints: &mut UnitHints,
) -> CharmResult<Status> {
    let work = Work::for_event(&ctx.event);
    let config = match SynapseConfig::from_juju(&tools.config_get()?) {
        Ok(c) => c,
        Err(e) => return Ok(Status::blocked(e.to_string())),
    };
    let peers = read_peers(ctx, tools, hints)?;
    share_keys(tools, &peers)?;
    if let Some(status) = peers::role(ctx, tools, &peers)?.status(ctx) {
        return Ok(status);
    }
    let db = database::relation(ctx, tools, &work.database, hints)?;
    let synapse_w = workloads.container(synapse::layer::CONTAINER);
    let nginx_w = workloads.container(nginx::CONTAINER);
    let was_on_postgres = database::ran_on_postgres(&workloads.data_dir());
    let synapse = synapse::reconcile::reconcile(
        &synapse::reconcile::Inputs {
            ctx,
            tools,
            workloads,
            config: &config,
            db: &db,
            peers: &peers,
            database_work: &work.database,
        },
        synapse_w.as_ref(),
        hints,
    )?;
    let nginx = nginx::reconcile(nginx_w.as_ref(), &mut hints.ready_baselines)?;
    let on_postgres = database::ran_on_postgres(&workloads.data_dir());
    let exporter = matches!(db, database::Db::Related { .. }) && on_postgres;
    let observability_work = work
        .observability
        .with_exporter_changed(on_postgres != was_on_postgres);
    observability::reconcile(
        ctx,
        tools,
        &observability_work,
        &observability::ObservabilityInputs {
            // Leadership is asked only when the observability relations have work.
            leader: !observability_work.is_empty() && tools.is_leader()?,
            exporter,
            synapse: synapse_w.as_ref(),
            nginx: nginx_w.as_ref(),
        },
    )?;
    Ok(status::aggregate_with_notes(
        &[synapse, nginx],
        &config.unhonoured(),
    ))
}

/// The peer databag, through the relation id remembered from earlier dispatches.
fn read_peers(
    ctx: &HookContext,
    tools: &dyn HookTools,
    hints: &mut UnitHints,
) -> CharmResult<Peers> {
    let known = hints.peer_relation.as_deref().and_then(RelationId::parse);
    let peers = Peers::read(tools, &ctx.app_name, known.as_ref())?;
    hints.peer_relation = peers.relation.as_ref().map(|r| r.to_string());
    Ok(peers)
}

/// The leader makes the keys as early as it can: the other units need them. Leadership
/// is asked only while the keys are not shared yet.
fn share_keys(tools: &dyn HookTools, peers: &Peers) -> CharmResult<()> {
    if peers.keys_secret().is_none() && tools.is_leader()? {
        keys::read(tools, peers, &keys::Source::Owned)?;
    }
    Ok(())
}
