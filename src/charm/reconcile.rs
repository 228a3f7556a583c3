//! The reconcile: one line per concern, in the order a dispatch needs them. Each
//! concern reads its inputs once, decides in pure code and applies only what differs.

use crate::error::{CharmError, CharmResult};
use crate::juju::hints::UnitHints;
use crate::juju::{HookContext, HookTools, RelationId, Status};
use crate::peers::{self, Peers};
use crate::relations::redis::Redis;
use crate::relations::{backup, database, ingress, matrix_auth, media, observability, smtp};
use crate::status::{self, Progress};
use crate::synapse::config::SynapseConfig;
use crate::workload::{Workload, Workloads};
use crate::{keys, nginx, synapse, topology};

use super::work::Work;

/// One full reconcile, one line per concern. Expected problems become the returned
/// status; unexpected ones an error (the hook fails and Juju retries it). Taking over a
/// previous charm's data unsafely is refused with a `blocked` status ([`crate::switch`]).
pub fn reconcile(
    ctx: &HookContext,
    tools: &dyn HookTools,
    workloads: &dyn Workloads,
    hints: &mut UnitHints,
) -> CharmResult<Status> {
    match reconcile_all(ctx, tools, workloads, hints) {
        Err(CharmError::Unsafe(msg)) => Ok(Status::blocked(msg)),
        other => other,
    }
}

fn reconcile_all(
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
    let data_dir = workloads.data_dir();
    let config = config.with_media_store(crate::switch::media_store_path(&data_dir)?);
    let origin = crate::switch::Origin {
        data_dir: &data_dir,
        server_name: &config.server_name,
        app: &ctx.app_name,
        unit: &ctx.unit_name,
    };
    // Every unit publishes its address for the ingress, main unit or not.
    let exposure = ingress::reconcile(ctx, tools, &work.exposure, &config, hints)?;
    let config = config.with_default_baseurl(exposure.url.as_deref());
    let peers = read_peers(ctx, tools, hints)?;
    share_keys(tools, &peers, &origin)?;
    let bridges = matrix_auth::relations(ctx, tools, &work.matrix_auth, hints)?;
    matrix_auth::publish(
        ctx,
        tools,
        &work.matrix_auth,
        &bridges,
        &synapse::homeserver::public_baseurl(&config, None),
        &|| {
            let keys = keys::read(tools, &peers, &keys::Source::Owned, Some(&origin))?;
            Ok(keys.map(|k| k.registration_shared_secret))
        },
    )?;
    let role = peers::role(ctx, tools, &peers)?;
    let Some(main) = role.main_unit(&ctx.unit_name) else {
        return Ok(role.status().unwrap_or_else(|| Status::waiting("")));
    };
    let db = database::relation(ctx, tools, &work.database, hints)?;
    let pod = Pod::open(workloads);
    let (config, scale) = match place(ctx, tools, &peers, &main, &db, hints)? {
        Placed::Run(cluster, progress) => (config.with_cluster(cluster), progress),
        Placed::Idle(progress) => {
            // A worker without what the cluster needs runs nothing.
            synapse::reconcile::hold_service(pod.synapse.as_ref())?;
            return Ok(status::aggregate(&[progress]));
        }
    };
    let bridges = matrix_auth::read(tools, &work.matrix_auth, bridges, hints)?;
    let mail = smtp::relation(ctx, tools, &work.smtp, hints)?;
    let media = media::read(ctx, tools, &work.media, hints, &workloads.data_dir())?;
    let backup = backup::reconcile(
        ctx,
        tools,
        &work.backup,
        config.backup_passphrase.is_some(),
        hints,
    )?;
    let synapse = run_synapse(
        ctx,
        tools,
        &pod,
        &config,
        (&db, &media, &mail, &bridges),
        (&peers, &origin),
        &work,
        hints,
    )?;
    let site = nginx::site::Site::new(
        &synapse::homeserver::public_baseurl(&config, None),
        &config.admin_api_allowed_cidrs,
    )
    .with_main(config.cluster.as_ref().filter(|c| !c.is_main()).map(|c| {
        format!(
            "{}:{}",
            topology::address(&c.app, &c.main),
            synapse::homeserver::CLIENT_PORT
        )
    }));
    let nginx = nginx::reconcile(pod.nginx.as_ref(), &site, hints)?;
    run_observability(ctx, tools, &pod, &db, &work)?;
    let mut notes = config.unhonoured(smtp::mail_on(hints));
    notes.extend(exposure.note);
    notes.extend(backup.note);
    Ok(status::aggregate_with_notes(
        &[
            scale,
            synapse,
            nginx,
            exposure.progress,
            media.progress,
            smtp::progress(hints),
            backup.progress,
            matrix_auth::remembered(hints),
        ],
        &notes,
    ))
}

/// The two containers, and whether Synapse ran on PostgreSQL when the hook began.
struct Pod<'a> {
    workloads: &'a dyn Workloads,
    synapse: Box<dyn Workload + 'a>,
    nginx: Box<dyn Workload + 'a>,
    was_on_postgres: bool,
}

impl<'a> Pod<'a> {
    fn open(workloads: &'a dyn Workloads) -> Self {
        Self {
            workloads,
            synapse: workloads.container(synapse::layer::CONTAINER),
            nginx: workloads.container(nginx::CONTAINER),
            was_on_postgres: database::ran_on_postgres(&workloads.data_dir()),
        }
    }

    fn on_postgres(&self) -> bool {
        database::ran_on_postgres(&self.workloads.data_dir())
    }
}

#[allow(clippy::too_many_arguments)]
fn run_synapse(
    ctx: &HookContext,
    tools: &dyn HookTools,
    pod: &Pod,
    config: &SynapseConfig,
    (db, media, mail, bridges): (
        &database::Db,
        &media::Media,
        &smtp::Mail,
        &matrix_auth::MatrixAuth,
    ),
    (peers, origin): (&Peers, &crate::switch::Origin),
    work: &Work,
    hints: &mut UnitHints,
) -> CharmResult<Progress> {
    let inputs = synapse::reconcile::Inputs {
        ctx,
        tools,
        workloads: pod.workloads,
        config,
        db,
        peers,
        origin,
        database_work: &work.database,
        media,
        media_work: &work.media,
        mail,
        bridges,
    };
    synapse::reconcile::reconcile(&inputs, pod.synapse.as_ref(), hints)
}

/// The observability relations; the scrape jobs follow the exporter when it started
/// or stopped in this hook.
fn run_observability(
    ctx: &HookContext,
    tools: &dyn HookTools,
    pod: &Pod,
    db: &database::Db,
    work: &Work,
) -> CharmResult<()> {
    let on_postgres = pod.on_postgres();
    let work = work
        .observability
        .clone()
        .with_exporter_changed(on_postgres != pod.was_on_postgres);
    let inputs = observability::ObservabilityInputs {
        // Leadership is asked only when the observability relations have work.
        leader: !work.is_empty() && tools.is_leader()?,
        exporter: matches!(db, database::Db::Related { .. }) && on_postgres,
        synapse: pod.synapse.as_ref(),
        nginx: pod.nginx.as_ref(),
    };
    observability::reconcile(ctx, tools, &work, &inputs)
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
fn share_keys(
    tools: &dyn HookTools,
    peers: &Peers,
    origin: &crate::switch::Origin,
) -> CharmResult<()> {
    if peers.keys_secret().is_none() && tools.is_leader()? {
        keys::read(tools, peers, &keys::Source::Owned, Some(origin))?;
    }
    Ok(())
}

/// What this unit runs once the main unit is known.
enum Placed {
    /// Synapse main or a worker (`Some` cluster), or main alone (`None`); the progress
    /// says what the cluster still lacks.
    Run(Option<topology::Cluster>, Progress),
    /// A worker unit that cannot run its worker yet.
    Idle(Progress),
}

/// The topology: the peer units and Redis (remembered between the events that can
/// change them), decided in [`topology::decide`].
fn place(
    ctx: &HookContext,
    tools: &dyn HookTools,
    peers: &Peers,
    main: &str,
    db: &database::Db,
    hints: &mut UnitHints,
) -> CharmResult<Placed> {
    let seen = topology::read(
        &ctx.event,
        tools,
        &ctx.unit_name,
        peers.relation.as_ref(),
        hints,
    )?;
    let plan = topology::decide(
        &ctx.app_name,
        &ctx.unit_name,
        main,
        &seen.units,
        seen.redis.as_ref().unwrap_or(&Redis::Absent),
        matches!(db, database::Db::Related { .. }),
    );
    Ok(match plan {
        topology::Plan::Single => Placed::Run(None, Progress::Ready),
        topology::Plan::Cluster(c) => Placed::Run(Some(c), Progress::Ready),
        topology::Plan::Incomplete {
            progress,
            serve: true,
        } => Placed::Run(None, progress),
        topology::Plan::Incomplete {
            progress,
            serve: false,
        } => Placed::Idle(progress),
    })
}
