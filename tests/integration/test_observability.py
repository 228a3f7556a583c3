"""Synapse observed by COS: Prometheus scrapes it and loads its alert rules, Loki
receives its logs through Pebble, Grafana gets its dashboards.

On JujuLocal, `juju deploy prometheus-k8s`, `loki-k8s` and `grafana-k8s` deploy their
stand-ins: the real Prometheus (Debian's) configured from nothing but the charm's
databags, as the Prometheus charm configures it; a recorder of Loki pushes that answers
Loki's query API; a recorder of the decoded dashboards. They listen on the host's
127.0.0.1, so this module's pods use the host network (`host_network`, requested before
`juju`). On a real controller they are the real charms (`latest/stable`), and
PostgreSQL is postgresql-k8s `14/stable`.

One model for the module; the tests run in file order, as an operator's session.
"""

import json

import jubilant
import pytest

from helpers import (
    base_url,
    dashboard_titles,
    deploy_synapse,
    http_get,
    log_targets,
    loki_lines,
    matrix,
    prometheus_query,
    relation_data,
    restart_pod,
    rule_groups,
    scrape_targets,
    shared_secret,
    starts,
    wait_serving,
    wait_until,
    wait_update_status,
)

APP = 'synapse'
UNIT = f'{APP}/0'
DB = 'postgresql-k8s'
PROMETHEUS = 'prometheus-k8s'
LOKI = 'loki-k8s'
GRAFANA = 'grafana-k8s'
SERVER_NAME = 'obs.example.com'
PASSWORD = 'correct horse battery'
SYNAPSE_JOB = 'synapse_application'
EXPORTER_JOB = 'synapse_stats_exporter'

@pytest.fixture(scope='module')
def synapse(host_network, juju: jubilant.Juju) -> jubilant.Juju:
    deploy_synapse(juju, APP, config={'server_name': SERVER_NAME})
    juju.deploy(DB, channel='14/stable', trust=True)
    juju.integrate(f'{APP}:database', f'{DB}:database')
    wait_serving(juju, UNIT)
    return juju

def job_names(juju: jubilant.Juju) -> list[str]:
    """The jobs Synapse offers (`scrape_jobs` in its application databag)."""
    app_data, _ = relation_data(juju, f'{PROMETHEUS}/0', 'metrics-endpoint')
    return [job['job_name'] for job in json.loads(app_data.get('scrape_jobs', '[]'))]

def synapse_targets(juju: jubilant.Juju) -> list[dict]:
    return [t for t in scrape_targets(juju) if t['labels'].get('juju_application') == APP]

def test_prometheus_scrapes_synapse_and_the_exporter(synapse: jubilant.Juju):
    synapse.deploy(PROMETHEUS, channel='latest/stable', trust=True)
    synapse.integrate(f'{APP}:metrics-endpoint', PROMETHEUS)
    synapse.wait(lambda s: jubilant.all_active(s, APP, PROMETHEUS), error=jubilant.any_error, delay=1)

    assert job_names(synapse) == [SYNAPSE_JOB, EXPORTER_JOB], 'on PostgreSQL the exporter runs'
    app_data, units = relation_data(synapse, f'{PROMETHEUS}/0', 'metrics-endpoint')
    metadata = json.loads(app_data['scrape_metadata'])
    model = synapse.show_model()
    assert metadata['model'] == synapse.model
    assert metadata['model_uuid'] == model.model_uuid
    assert metadata['application'] == APP and metadata['charm_name'] == APP
    assert units[UNIT]['prometheus_scrape_unit_name'] == UNIT

    # One job per unit and per port, each target up, labelled with the topology.
    def both_up():
        targets = synapse_targets(synapse)
        return len(targets) == 2 and all(t['health'] == 'up' for t in targets)

    wait_until(synapse, both_up, timeout=120)
    targets = synapse_targets(synapse)
    prefix = f'juju_{synapse.model}_{model.model_uuid[:8]}_{APP}_prometheus_scrape_'
    assert sorted(t['labels']['job'] for t in targets) == [
        f'{prefix}{SYNAPSE_JOB}-0',
        f'{prefix}{EXPORTER_JOB}-0',
    ]
    assert sorted(t['scrapeUrl'].rsplit(':', 1)[1] for t in targets) == [
        '9000/metrics',
        '9877/metrics',
    ]
    for t in targets:
        assert t['labels']['juju_unit'] == UNIT, t
        assert t['labels']['juju_charm'] == APP, t
        assert t['labels']['juju_model_uuid'] == model.model_uuid, t
    assert prometheus_query(synapse, 'synapse_build_info'), "Synapse's own metrics"
    assert prometheus_query(synapse, f'up{{juju_application="{APP}"}} == 1')

    # Steady state: an update-status rewrites nothing the charm published.
    before = relation_data(synapse, f'{PROMETHEUS}/0', 'metrics-endpoint')
    wait_update_status(synapse, UNIT)
    assert relation_data(synapse, f'{PROMETHEUS}/0', 'metrics-endpoint') == before

def test_registered_users_reach_prometheus_through_the_exporter(synapse: jubilant.Juju):
    url = base_url(synapse, UNIT)
    secret = shared_secret(synapse, APP)
    for user in ('alice', 'bob'):
        matrix(synapse, UNIT, 'register', url, secret, user, PASSWORD)

    def counted():
        result = prometheus_query(synapse, f'synapse_total_users{{juju_application="{APP}"}}')
        return bool(result) and float(result[0]['value'][1]) == 2

    wait_until(synapse, counted, timeout=120)

def test_alert_rules_are_loaded_with_the_topology(synapse: jubilant.Juju):
    app_data, _ = relation_data(synapse, f'{PROMETHEUS}/0', 'metrics-endpoint')
    shipped = json.loads(app_data['alert_rules'])['groups']
    assert len(shipped) >= 5
    uuid = synapse.show_model().model_uuid
    ours = f'{synapse.model}_{uuid}_{APP}_'
    wait_until(
        synapse,
        lambda: len([g for g in rule_groups(synapse) if g['name'].startswith(ours)]) == len(shipped),
        timeout=60,
    )
    groups = [g for g in rule_groups(synapse) if g['name'].startswith(ours)]
    for group in groups:
        for rule in group['rules']:
            assert rule['health'] in ('ok', 'unknown'), rule
            assert rule['labels']['juju_application'] == APP, rule
            assert rule['labels']['juju_model_uuid'] == uuid, rule
            assert rule['labels']['juju_charm'] == APP, rule
    alerts = {r['name'] for g in groups for r in g['rules'] if r['type'] == 'alerting'}
    assert 'SynapseTargetDown' in alerts, alerts
    assert 'SynapseStatsExporterTargetDown' in alerts, alerts

def test_logs_reach_loki_through_pebble(synapse: jubilant.Juju):
    synapse_starts = starts(synapse, UNIT, 'synapse', 'synapse')
    synapse.deploy(LOKI, channel='latest/stable', trust=True)
    synapse.integrate(f'{APP}:logging', LOKI)
    synapse.wait(lambda s: jubilant.all_active(s, APP, LOKI), error=jubilant.any_error, delay=1)

    app_data, units = relation_data(synapse, f'{LOKI}/0', 'logging')
    metadata = json.loads(app_data['metadata'])
    assert metadata['application'] == APP
    assert metadata['model_uuid'] == synapse.show_model().model_uuid
    _, loki_units = relation_data(synapse, UNIT, 'logging')
    push_url = json.loads(loki_units[f'{LOKI}/0']['endpoint'])['url']

    def forwarding(container: str) -> bool:
        target = log_targets(synapse, UNIT, container).get(f'{LOKI}/0', {})
        return target.get('location') == push_url and target.get('services') == ['all']

    wait_until(synapse, lambda: forwarding('synapse') and forwarding('synapse-nginx'), timeout=60)
    target = log_targets(synapse, UNIT, 'synapse')[f'{LOKI}/0']
    assert target['labels']['juju_unit'] == UNIT, target

    # Requests make Synapse and NGINX log; Pebble forwards the lines without a restart.
    versions = f'{base_url(synapse, UNIT)}/_matrix/client/versions'

    def lines_arrived() -> bool:
        http_get(synapse, UNIT, versions)
        return bool(loki_lines(synapse, pebble_service='synapse')) and any(
            '/_matrix/client/versions' in line
            for _, line in loki_lines(synapse, pebble_service='nginx')
        )

    wait_until(synapse, lines_arrived, timeout=90)
    assert starts(synapse, UNIT, 'synapse', 'synapse') == synapse_starts, 'no restart'
    labels, _ = loki_lines(synapse, pebble_service='synapse')[0]
    expected = {
        'product': 'Juju',
        'charm': APP,
        'juju_application': APP,
        'juju_unit': UNIT,
        'juju_model': synapse.model,
        'juju_model_uuid': synapse.show_model().model_uuid,
    }
    assert {k: labels.get(k) for k in expected} == expected, labels

def test_log_forwarding_survives_pod_churn(synapse: jubilant.Juju):
    restart_pod(synapse, UNIT)
    wait_serving(synapse, UNIT)
    for container in ('synapse', 'synapse-nginx'):
        target = log_targets(synapse, UNIT, container)[f'{LOKI}/0']
        assert target['services'] == ['all'], (container, target)

def test_grafana_gets_the_dashboards(synapse: jubilant.Juju):
    synapse.deploy(GRAFANA, channel='latest/stable', trust=True)
    synapse.integrate(f'{APP}:grafana-dashboard', GRAFANA)
    synapse.wait(lambda s: jubilant.all_active(s, APP, GRAFANA), error=jubilant.any_error, delay=1)
    wait_until(
        synapse,
        lambda: dashboard_titles(synapse) == ['Synapse Overview', 'Synapse Statistics'],
        timeout=120,
    )

def exporter_targets(juju: jubilant.Juju) -> list[dict]:
    return [t for t in synapse_targets(juju) if EXPORTER_JOB in t['labels']['job']]


def test_the_exporter_job_follows_the_database_integration(synapse: jubilant.Juju):
    # Without PostgreSQL the exporter stops (and Synapse, whose data is there): the
    # leader takes its job out of scrape_jobs, and Prometheus stops scraping it.
    synapse.remove_relation(f'{APP}:database', f'{DB}:database')
    wait_until(synapse, lambda: job_names(synapse) == [SYNAPSE_JOB], timeout=120)
    wait_until(synapse, lambda: not exporter_targets(synapse), timeout=60)

    # Back on PostgreSQL: the job and its target come back, up.
    synapse.integrate(f'{APP}:database', f'{DB}:database')
    wait_serving(synapse, UNIT)
    assert job_names(synapse) == [SYNAPSE_JOB, EXPORTER_JOB]
    wait_until(
        synapse,
        lambda: [t['health'] for t in exporter_targets(synapse)] == ['up'],
        timeout=120,
    )


def test_removing_the_relations_removes_jobs_rules_and_log_targets(synapse: jubilant.Juju):
    uuid = synapse.show_model().model_uuid
    ours = f'{synapse.model}_{uuid}_{APP}_'
    synapse.remove_relation(f'{APP}:metrics-endpoint', PROMETHEUS)
    synapse.remove_relation(f'{APP}:logging', LOKI)
    wait_until(
        synapse,
        lambda: not synapse_targets(synapse)
        and not [g for g in rule_groups(synapse) if g['name'].startswith(ours)],
        timeout=120,
    )
    # Pebble cannot delete a log target: it stays, disabled.
    for container in ('synapse', 'synapse-nginx'):
        wait_until(
            synapse,
            lambda c=container: log_targets(synapse, UNIT, c)[f'{LOKI}/0']['services'] == ['-all'],
            timeout=60,
        )
    synapse.wait(lambda s: jubilant.all_active(s, APP), error=jubilant.any_error, delay=1)
