//! Scaling out through the reconcile, in the in-memory model: a second unit is a
//! worker, which needs PostgreSQL and Redis; the main unit keeps serving meanwhile.

use serde_json::json;

use super::reconcile::reconcile;
use crate::juju::hints::UnitHints;
use crate::juju::{Event, RelationId, Status};
use crate::peers::{ENDPOINT as PEERS, MAIN_UNIT_KEY};
use crate::testing::juju::{APP, UNIT};
use crate::testing::{FakePod, Juju};

fn rel(endpoint: &str, id: u64) -> RelationId {
    RelationId {
        endpoint: endpoint.into(),
        id,
    }
}

fn config_changed(j: &mut Juju, unit: &str, pod: &FakePod) -> Status {
    let mut hints = UnitHints::default();
    j.hook(unit, Event::ConfigChanged, |ctx, tools| {
        reconcile(ctx, tools, pod, &mut hints)
    })
    .unwrap()
}

#[test]
fn a_worker_without_redis_runs_nothing_and_names_the_fix() {
    let mut j = Juju::new().with_config(json!({"server_name": "example.com"}));
    let worker = j.add_unit();
    j.set_leader(Some(UNIT));
    j.set_app_data(&rel(PEERS, 0), APP, &[(MAIN_UNIT_KEY, UNIT)]);
    j.relate(&rel("database", 1), "postgresql-k8s", &["postgresql-k8s/0"]);
    let pod = FakePod::up();
    assert_eq!(
        config_changed(&mut j, &worker, &pod),
        Status::blocked("2 units need Redis: run `juju integrate synapse redis-k8s`")
    );
    assert!(
        pod.synapse.pushes.borrow().is_empty(),
        "a worker without Redis writes nothing"
    );

    // Redis related, but not answering yet: waiting, still nothing written.
    j.relate(&rel("redis", 2), "redis-k8s", &["redis-k8s/0"]);
    assert_eq!(
        config_changed(&mut j, &worker, &pod),
        Status::waiting("Waiting for Redis to publish its address")
    );
    // Invalid data names the relation.
    j.set_unit_data(
        &rel("redis", 2),
        "redis-k8s/0",
        &[("hostname", "r"), ("port", "x")],
    );
    let status = config_changed(&mut j, &worker, &pod);
    assert!(
        status
            .message
            .starts_with("the redis integration sent invalid data: `port`"),
        "{status:?}"
    );
    assert!(pod.synapse.pushes.borrow().is_empty());
}
