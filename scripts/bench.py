#!/usr/bin/env python3
"""`make bench`: figures, not pass/fail. See docs/explanation/performance.md.

Under JujuLocal with real pods (real Pebble, Synapse, NGINX; the postgresql-k8s and
prometheus-k8s stand-ins with their real servers) it dispatches each hook of the table
BENCH_RUNS times (default 15; hooks that restart Synapse BENCH_RESTART_RUNS times,
default 4) and reads JujuLocal's dispatch records (`hooks.jsonl`): wall time, peak RSS,
hook-tool calls. One more run of each hook with JUJULOCAL_COUNT_PEBBLE=1 counts the
Pebble requests and pushes (a proxy on the socket; kept out of the timed runs).
Restarts are Synapse's and NGINX's `Start service` tasks in their Pebble's changes,
before and after. The floor is Canonical's `ops` fixture charm
(crates/jujulocal/tests/fixtures/ops-charm) dispatched by the same JujuLocal.

Only the standard library. Needs root (pods), the release build and the packed charm
(`make charm`), and the host's ports 8080/8008/9000/9877 for the PostgreSQL part (it
takes the integration tests' host-network lock).
"""

import fcntl
import http.client
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
TOOLS = pathlib.Path(os.environ.get('SYNAPSE_CHARM_TOOLS', '/opt/synapse-charm'))
RELEASE = REPO / 'target' / 'release'
JL = RELEASE / 'jujulocal'
JUJU = RELEASE / 'jujulocal-juju'
CHARM = REPO / 'build' / 'charm'
PACKED = REPO / 'build' / 'synapse_amd64.charm'
OPS_FIXTURE = REPO / 'crates' / 'jujulocal' / 'tests' / 'fixtures' / 'ops-charm'
HOST_NETWORK_LOCK = '/tmp/synapse-charm-host-network.lock'
APP, UNIT = 'synapse', 'synapse/0'
CONTAINERS = {'synapse': 'synapse', 'synapse-nginx': 'nginx'}  # container: service

# ----- pure part (tests/bench_smoke.py) ------------------------------------------------


def spread(values: list[float]) -> tuple[float, float, float]:
    """(median, p10, p90) by nearest rank; one value gives itself three times."""
    v = sorted(values)
    if not v:
        return (float('nan'),) * 3

    def rank(p: float) -> float:
        return v[min(len(v) - 1, max(0, round(p * (len(v) - 1))))]

    return statistics.median(v), rank(0.1), rank(0.9)


def summarise(timed: list[dict], counted: dict | None) -> dict:
    """One table row from dispatch records: `timed` give the times and RSS, `counted`
    (a run with JUJULOCAL_COUNT_PEBBLE=1) the Pebble requests and pushes."""
    med, lo, hi = spread([r['wall_ms'] for r in timed])
    pebble = counted.get('pebble') if counted else None
    return {
        'n': len(timed),
        'median': med,
        'p10': lo,
        'p90': hi,
        'rss_kib': max((r['max_rss_kib'] for r in timed), default=0),
        'tools': statistics.median([len(r['calls']) for r in timed]) if timed else 0,
        'pebble': None if pebble is None else len(pebble),
        'pushes': None if pebble is None else sum(1 for c in pebble if c.get('push')),
    }


def count_starts(changes: list[dict], service: str) -> int:
    """Pebble's `Start service "S"` tasks over all changes (a restart or a replan that
    restarts is a stop and a start task)."""
    want = f'Start service "{service}"'
    return sum(1 for ch in changes for t in ch.get('tasks') or [] if t.get('summary') == want)


def downtime(polls: list[tuple[float, bool]]) -> tuple[int, float]:
    """(failed polls, longest time in seconds from the last good poll before a failure
    to the first good one after it) from (time, ok) pairs in time order."""
    failed = sum(1 for _, ok in polls if not ok)
    longest, last_ok, in_gap = 0.0, None, False
    for t, ok in polls:
        if ok:
            if in_gap and last_ok is not None:
                longest = max(longest, t - last_ok)
            last_ok, in_gap = t, False
        else:
            in_gap = True
    return failed, longest


def fmt(x, spec: str = '.1f') -> str:
    return '-' if x is None else format(x, spec)


def table(rows: list[tuple[str, dict, dict | None]]) -> str:
    """The hooks table; the ratio is our median over the floor's median."""
    head = (
        f"{'hook':44} {'n':>3} {'median ms':>10} {'p10-p90 ms':>16} {'peak RSS':>9} "
        f"{'tools':>5} {'pebble':>6} {'pushes':>6} {'restarts':>8} {'ops ms':>7} {'ratio':>6}"
    )
    lines = [head, '-' * len(head)]
    for name, r, floor in rows:
        ratio = r['median'] / floor['median'] if floor and floor['median'] else None
        lines.append(
            f"{name:44} {r['n']:>3} {r['median']:>10.1f} "
            f"{r['p10']:>7.1f}-{r['p90']:<8.1f} {r['rss_kib'] / 1024:>7.1f}Mi "
            f"{r['tools']:>5g} {fmt(r['pebble'], 'd'):>6} {fmt(r['pushes'], 'd'):>6} "
            f"{fmt(r.get('restarts'), 'g'):>8} {fmt(floor and floor['median']):>7} "
            f"{fmt(ratio, '.2f'):>6}"
        )
    return '\n'.join(lines)


# ----- effectful part -------------------------------------------------------------------


def run(*argv, env=None, check=True) -> str:
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise SystemExit(f'failed: {" ".join(map(str, argv))}\n{p.stdout}{p.stderr}')
    return p.stdout


def wait(condition, what: str, timeout: float = 300, every: float = 0.2, last=None):
    """Waits for `condition`; on time-out, `last()` (if given) says what was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    seen = f'; last seen: {last()}' if last else ''
    raise SystemExit(f'timed out after {timeout:.0f} s waiting for {what}{seen}')


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__('localhost', timeout=10)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


class Model:
    """One JujuLocal model, driven through its `juju` client and the `jujulocal` CLI."""

    def __init__(self, root: pathlib.Path, name: str, host_network: bool):
        self.root, self.name = root, name
        self.home = root / 'models' / name
        pods = root / f'pods-{name}.yaml'
        pods.write_text(
            f'pebble: {TOOLS / "bin" / "pebble"}\n'
            f'netns: {"false" if host_network else "true"}\n'
            'mounts:\n  synapse:\n'
            f'    /opt/synapse: {TOOLS / "synapse-venv"}\n'
            f'    /usr/local/bin/synapse-stats-exporter: {RELEASE / "synapse-stats-exporter"}\n'
            '  synapse-nginx:\n'
            f'    /etc/nginx: {REPO / "nginx_rock" / "etc" / "nginx"}\n'
            '    /var/lib/nginx: tmpfs\n    /var/log/nginx: tmpfs\n'
        )
        self.env = dict(
            os.environ,
            JUJULOCAL_HOME=str(root),
            JUJULOCAL_BIN=str(JL),
            JUJULOCAL_PODS=str(pods),
            JUJULOCAL_UPDATE_STATUS_INTERVAL='0',
        )
        self.env.pop(COUNT, None)
        self.juju('add-model', name)

    def juju(self, *args, check=True) -> str:
        return run(JUJU, *args, env=self.env, check=check)

    def jl(self, *args, count=False) -> str:
        env = dict(self.env, JUJULOCAL_HOME=str(self.home))
        if count:
            env[COUNT] = '1'
        return run(JL, *args, env=env)

    def records(self) -> list[dict]:
        path = self.home / 'hooks.jsonl'
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def seq(self) -> int:
        r = self.records()
        return r[-1]['seq'] if r else -1

    def since(self, seq: int, hook: str | None = None, unit: str | None = UNIT) -> list[dict]:
        return [
            r
            for r in self.records()
            if r['seq'] > seq
            and (hook is None or r['hook'] == hook)
            and (unit is None or r['unit'] == unit)
        ]

    def status(self, unit: str = UNIT) -> str:
        doc = json.loads(self.juju('status', '--format', 'json'))
        u = doc['applications'].get(unit.split('/')[0], {}).get('units', {}).get(unit, {})
        return u.get('workload-status', {}).get('current', '')

    def message(self, unit: str) -> str:
        doc = json.loads(self.juju('status', '--format', 'json'))
        u = doc['applications'].get(unit.split('/')[0], {}).get('units', {}).get(unit, {})
        return u.get('workload-status', {}).get('message', '')

    def starts_by_service(self, unit: str = UNIT) -> dict[str, int]:
        """Synapse's and NGINX's starts so far, from their Pebble's changes (a new
        container counts from zero)."""
        out = {}
        for container, service in CONTAINERS.items():
            sock = self.home / 'pods' / unit.replace('/', '-') / 'containers' / container
            c = UnixHTTP(str(sock / 'pebble.socket'))
            c.request('GET', '/v1/changes?select=all')
            out[service] = count_starts(json.loads(c.getresponse().read())['result'], service)
            c.close()
        return out

    def starts(self, unit: str = UNIT) -> int:
        return sum(self.starts_by_service(unit).values())

    def deploy_synapse(self):
        self.juju(
            'deploy', CHARM, APP, '--config', 'server_name=bench.example.com',
            '--resource', 'synapse-image=synapse', '--resource', 'synapse-nginx-image=nginx',
        )

    def wait_active(self, *units: str, timeout: float = 600):
        units = units or (UNIT,)

        def active():
            self.jl('update-status')
            return all(self.status(u) == 'active' for u in units)

        def seen():
            return '; '.join(f'{u} {self.status(u)} ({self.message(u)})' for u in units)

        wait(active, f'{", ".join(units)} active', timeout, every=0.5, last=seen)

    def destroy(self):
        self.juju('destroy-model', self.name, '--no-prompt', check=False)


COUNT = 'JUJULOCAL_COUNT_PEBBLE'
RUNS = int(os.environ.get('BENCH_RUNS', '15'))
RESTART_RUNS = int(os.environ.get('BENCH_RESTART_RUNS', '4'))


def measure(m: Model, hook: str, trigger, runs: int):
    """Runs `trigger(i, count)` `runs` times plus once counted; the row for `hook`.
    (A container JujuLocal restarts keeps its Pebble state directory, as a Kubernetes
    container restart keeps the pod's volume, so its changes keep counting.)"""
    mark = m.seq()
    restarts = []
    for i in range(runs):
        s0 = m.starts()
        trigger(i, False)
        restarts.append(m.starts() - s0)
    timed = m.since(mark, hook)
    mark = m.seq()
    trigger(runs, True)
    counted = m.since(mark, hook)
    row = summarise(timed, counted[-1] if counted else None)
    row['restarts'] = statistics.median(restarts) if restarts else None
    return row


def starts_text(s: dict[str, int]) -> str:
    return ', '.join(f'{k} {v}' for k, v in s.items())


POLLER = """\
import os, sys, time, urllib.request
out, stop = sys.argv[1], sys.argv[2]
with open(out, 'a') as f:
    while not os.path.exists(stop):
        t = time.monotonic()
        try:
            url = 'http://localhost:8080/_matrix/client/versions'
            ok = urllib.request.urlopen(url, timeout=1).status == 200
        except Exception:
            ok = False
        f.write(f'{t} {int(ok)}\\n')
        f.flush()
        time.sleep(max(0.0, 0.05 - (time.monotonic() - t)))
"""


class Poller:
    """A client polling /_matrix/client/versions through NGINX every 50 ms, from inside
    the pod's network (JujuLocal's charm container shares it and the host's files)."""

    def __init__(self, m: Model):
        d = m.root / 'poller'
        d.mkdir(exist_ok=True)
        (d / 'poll.py').write_text(POLLER)
        self.out, self.stop = d / 'polls', d / 'stop'
        self.proc = subprocess.Popen(
            [JUJU, 'exec', '--unit', UNIT, '--', sys.executable, d / 'poll.py', self.out, self.stop],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=m.env,
        )

    def polls(self) -> list[tuple[float, bool]]:
        if not self.out.exists():
            return []
        rows = [line.split() for line in self.out.read_text().splitlines()]
        return [(float(t), ok == '1') for t, ok in (r for r in rows if len(r) == 2)]

    def finish(self) -> list[tuple[float, bool]]:
        self.stop.touch()
        self.proc.wait(timeout=60)
        return self.polls()


def floor_rows(root: pathlib.Path) -> dict[str, dict]:
    """The ops fixture's dispatches: same hooks where it has them."""
    home = root / 'floor'
    charm = root / 'ops-charm'
    shutil.copytree(OPS_FIXTURE, charm, ignore=shutil.ignore_patterns('__pycache__'))
    env = dict(os.environ, JUJULOCAL_HOME=str(home), JUJULOCAL_BIN=str(JL))

    def jl(*args):
        return run(JL, *args, env=env)

    jl('bootstrap', '--name', 'floor')
    jl('deploy', charm, 'opscheck', '--config', 'count=3')
    jl('play', 'pg', '--endpoint', 'db:pgsql-test:provides')
    jl('integrate', 'opscheck:db', 'pg:db')
    rel = next(
        r['id'] for r in json.loads((home / 'model.json').read_text())['relations']
        if any(e['app'] == 'pg' for e in r['ends'])
    )
    recs = lambda: [json.loads(x) for x in (home / 'hooks.jsonl').read_text().splitlines()]
    out = {}
    for hook, trigger in [
        ('update-status', lambda i: jl('fire', 'opscheck/0', 'update-status')),
        ('install', lambda i: jl('fire', 'opscheck/0', 'install')),
        ('config-changed', lambda i: jl('config', 'opscheck', f'greeting=hi{i}')),
        ('db-relation-changed', lambda i: jl('relation-set', rel, 'pg', f'app-key=k{i}')),
        ('do-thing', lambda i: jl('run', 'opscheck/0', 'do-thing', f'who=w{i}')),
    ]:
        mark = recs()[-1]['seq']
        for i in range(RUNS):
            trigger(i)
        timed = [r for r in recs() if r['seq'] > mark and r['unit'] == 'opscheck/0'
                 and r['hook'] == hook]
        out[hook] = summarise(timed, None)
    return out


def main() -> int:
    for path, what in [(JL, 'jujulocal'), (CHARM / 'dispatch', 'the packed charm')]:
        if not path.exists():
            raise SystemExit(f'{what} not found at {path}: run `make charm`')
    root = pathlib.Path(tempfile.mkdtemp(prefix='jb-', dir='/tmp'))
    models: list[Model] = []
    seqs: list[tuple[str, str]] = []
    rows: list[tuple[str, dict, str]] = []
    load = os.getloadavg()
    cpu = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                if line.startswith('model name')), '?')
    mem = next(int(line.split()[1]) for line in open('/proc/meminfo') if line.startswith('MemTotal'))
    commit = run('git', '-C', REPO, 'describe', '--always', '--dirty', check=False).strip()
    print(f'machine: {os.cpu_count()} CPUs ({cpu}), {mem / 2**20:.0f} GiB RAM, load average '
          f'{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start; commit {commit}', flush=True)
    try:
        print(f'== floor: the ops fixture charm, {RUNS} runs per hook', flush=True)
        floor = floor_rows(root)

        print('== deploy -> active (own network namespace)', flush=True)
        a = Model(root, 'bench', host_network=False)
        models.append(a)
        t0 = time.monotonic()
        a.deploy_synapse()
        a.wait_active()
        seqs.append(('deploy -> active', f'{time.monotonic() - t0:.1f} s; starts: '
                     f'{starts_text(a.starts_by_service())} (goal: synapse 1)'))
        # A fresh Synapse runs background updates for a while: let it settle.
        time.sleep(float(os.environ.get('BENCH_SETTLE', '20')))

        fire = lambda hook: (lambda i, c: a.jl('fire', UNIT, hook, count=c))
        print(f'== hooks on synapse/0, {RUNS} runs each', flush=True)
        for hook in ['update-status', 'install', 'config-changed']:
            label = {'config-changed': 'config-changed (no change)',
                     'install': 'install (again)'}.get(hook, hook)
            rows.append((label, measure(a, hook, fire(hook), RUNS), hook))
            print(f'  {label}', flush=True)

        flip = lambda i, c: a.jl('config', APP, f'block_non_admin_invites={str(i % 2 == 0).lower()}', count=c)
        rows.append(('config-changed (one option)', measure(a, 'config-changed', flip, RESTART_RUNS), 'config-changed'))
        a.wait_active()
        for container in CONTAINERS:
            churn = lambda i, c, ct=container: a.jl('restart-container', UNIT, ct, count=c)
            rows.append((f'{container}-pebble-ready (new container)',
                         measure(a, f'{container}-pebble-ready', churn, RESTART_RUNS),
                         'update-status'))
            a.wait_active()
            print(f'  {container}-pebble-ready', flush=True)
        action = lambda i, c: a.jl('run', UNIT, 'register-user', f'username=bench{i}{"c" if c else ""}', count=c)
        rows.append(('action register-user', measure(a, 'register-user', action, RUNS), 'do-thing'))

        s0 = a.starts()
        for _ in range(20):
            a.jl('fire', UNIT, 'update-status')
        seqs.append(('20 update-status in a row', f'restarts {a.starts() - s0} (goal 0)'))

        # Client-visible downtime of a config change.
        a.wait_active()
        poller = Poller(a)
        wait(lambda: sum(ok for _, ok in poller.polls()) >= 10, 'the poller answering')
        s0 = a.starts()
        a.jl('config', APP, 'enable_room_list_search=false')
        changed = time.monotonic()

        def back():
            # Done once Synapse answers again for 2 s in a row (or 120 s passed).
            p = poller.polls()
            return len(p) > 40 and all(ok for _, ok in p[-40:]) and p[-40][0] > changed

        wait(back, 'Synapse back after the change', 120, 0.1)
        polls = poller.finish()
        failed, gap = downtime(polls)
        seqs.append(('config change, client polling every 50 ms',
                     f'{failed} failed polls of {len(polls)}, longest gap {gap * 1000:.0f} ms, '
                     f'restarts {a.starts() - s0}'))

        a.destroy()
        models.remove(a)

        # add-unit cascade: scaling out needs PostgreSQL and Redis (both stand-ins run
        # on the model's cluster network), so a fresh model relates them first (the
        # model above has users in SQLite, which the charm rightly refuses to leave
        # behind), then adds a unit and waits until both units are active: the hooks
        # it took on each unit, their tool calls and Synapse restarts.
        print('== add-unit cascade (own network namespace, PostgreSQL and Redis)', flush=True)
        a = Model(root, 'bench-scale', host_network=False)
        models.append(a)
        a.deploy_synapse()
        a.juju('deploy', 'postgresql-k8s', '--channel', '14/stable', '--trust')
        a.juju('deploy', 'redis-k8s')
        a.juju('integrate', f'{APP}:database', 'postgresql-k8s')
        a.juju('integrate', f'{APP}:redis', 'redis-k8s')
        a.wait_active(UNIT, 'postgresql-k8s/0', 'redis-k8s/0')
        mark, s0 = a.seq(), a.starts_by_service()
        t0 = time.monotonic()
        a.juju('add-unit', APP)
        a.wait_active(UNIT, f'{APP}/1')
        took = time.monotonic() - t0
        recs = a.since(mark, unit=None)
        by_unit = {}
        for r in recs:
            by_unit.setdefault(r['unit'], []).append(r)
        parts = []
        for u, rs in sorted(by_unit.items()):
            if not u.startswith(f'{APP}/'):
                continue
            parts.append(f'{u}: {len(rs)} hooks, {sum(len(r["calls"]) for r in rs)} tool calls, '
                         f'{sum(r["wall_ms"] for r in rs):.0f} ms in dispatch')
        s1 = a.starts_by_service()
        again = {k: s1.get(k, 0) - s0.get(k, 0) for k in s1}
        seqs.append(('add-unit cascade (with PostgreSQL and Redis)',
                     f'{took:.1f} s to both units active; ' + '; '.join(parts)
                     + f'; restarts on {APP}/0: {starts_text(again)} (goal: synapse 1, as it '
                     f'gains the worker in its instance_map); starts on {APP}/1: '
                     f'{starts_text(a.starts_by_service(f"{APP}/1"))} (goal: synapse 1)'))
        a.destroy()
        models.remove(a)

        print('== deploy -> PostgreSQL -> Prometheus -> active (host network)', flush=True)
        with open(HOST_NETWORK_LOCK, 'a') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            b = Model(root, 'bench-db', host_network=True)
            models.append(b)
            t0 = time.monotonic()
            b.deploy_synapse()
            b.juju('deploy', 'postgresql-k8s', '--channel', '14/stable', '--trust')
            b.juju('integrate', f'{APP}:database', 'postgresql-k8s')
            b.juju('deploy', 'prometheus-k8s', '--channel', 'latest/stable', '--trust')
            b.juju('integrate', f'{APP}:metrics-endpoint', 'prometheus-k8s')
            b.wait_active(UNIT, 'postgresql-k8s/0', 'prometheus-k8s/0')
            seqs.append(('deploy -> PostgreSQL -> Prometheus -> active',
                         f'{time.monotonic() - t0:.1f} s; starts: '
                         f'{starts_text(b.starts_by_service())} (goal: synapse 2)'))
            rel = next(
                r['id'] for r in json.loads((b.home / 'model.json').read_text())['relations']
                if any(e['app'] == 'postgresql-k8s' for e in r['ends'])
            )
            nudge = lambda i, c: b.jl('relation-set', rel, 'postgresql-k8s', f'bench-nonce={i}{c}', count=c)
            rows.append(('database-relation-changed (no change)',
                         measure(b, 'database-relation-changed', nudge, RUNS), 'db-relation-changed'))

            def rejoin(i, c):
                b.juju('remove-relation', f'{APP}:metrics-endpoint', 'prometheus-k8s')
                env = dict(b.env, **({COUNT: '1'} if c else {}))
                run(JUJU, 'integrate', f'{APP}:metrics-endpoint', 'prometheus-k8s', env=env)

            rows.append(('metrics-endpoint-relation-joined',
                         measure(b, 'metrics-endpoint-relation-joined', rejoin, RESTART_RUNS),
                         'update-status'))
            b.destroy()
            models.remove(b)
    finally:
        for m in models:
            m.destroy()
        shutil.rmtree(root, ignore_errors=True)

    print()
    print(table([(name, r, floor.get(f)) for name, r, f in rows]))
    print()
    for name, text in seqs:
        print(f'{name}: {text}')
    print()
    size = (RELEASE / 'synapse-k8s-charm').stat().st_size
    print(f'stripped binary: {size / 1e6:.2f} MB; '
          f'.charm: {PACKED.stat().st_size / 1e6:.2f} MB' if PACKED.exists() else '')
    print('(wall: spawn to exit of dispatch as the unit agent sees it; RSS: the dispatch '
          'process and its waited-for children; restarts: median per run; ops ms: the ops '
          'fixture on the same hook, else its update-status, i.e. the cost of starting ops)')
    if os.environ.get('BENCH_EXTRAS', '1') != '0':
        print('\n== Pebble client latency (real Pebble)', flush=True)
        env = dict(os.environ, PEBBLE_BIN=str(TOOLS / 'bin' / 'pebble'))
        subprocess.run(['cargo', 'run', '-q', '--release', '-p', 'pebble', '--example',
                        'pebble_latency', '--', '200'], cwd=REPO, env=env, check=True)
        print('== Synapse Stats Exporter (real PostgreSQL)', flush=True)
        subprocess.run(['cargo', 'run', '-q', '--release', '-p', 'synapse-stats-exporter',
                        '--example', 'scrape_latency'], cwd=REPO, check=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
