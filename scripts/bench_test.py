#!/usr/bin/env python3
"""Keeps `make bench` from rotting: its pure part (statistics, Pebble's start tasks, the
downtime of a polling client, the table) on fixed inputs, in well under a second.
Run by `make test` (`python3 scripts/bench_test.py`)."""

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench  # noqa: E402


def record(ms: float, rss: int = 2048, calls: int = 2, pebble=None) -> dict:
    r = {'wall_ms': ms, 'max_rss_kib': rss, 'calls': [{'tool': 't'}] * calls}
    if pebble is not None:
        r['pebble'] = pebble
    return r


class BenchTest(unittest.TestCase):
    def test_spread_is_median_and_nearest_rank_deciles(self):
        self.assertEqual(bench.spread([float(x) for x in range(1, 12)]), (6.0, 2.0, 10.0))
        self.assertEqual(bench.spread([5.0]), (5.0, 5.0, 5.0))

    def test_a_row_takes_times_from_timed_runs_and_pebble_from_the_counted_one(self):
        push = {'container': 'synapse', 'method': 'POST', 'target': '/v1/files', 'push': True}
        plan = {'container': 'synapse', 'method': 'GET', 'target': '/v1/plan', 'push': False}
        row = bench.summarise(
            [record(3.0), record(1.0, rss=4096), record(2.0)], record(99.0, pebble=[push, plan])
        )
        self.assertEqual((row['n'], row['median'], row['rss_kib']), (3, 2.0, 4096))
        self.assertEqual((row['tools'], row['pebble'], row['pushes']), (2, 2, 1))
        # Without a counted run (the floor has no pods) the Pebble columns are empty.
        self.assertIsNone(bench.summarise([record(1.0)], None)['pebble'])

    def test_starts_are_the_start_tasks_of_the_service(self):
        changes = [
            {'tasks': [{'summary': 'Start service "synapse"'}]},
            {'tasks': [{'summary': 'Stop service "synapse"'},
                       {'summary': 'Start service "synapse"'},
                       {'summary': 'Start service "stats-exporter"'}]},
            {'summary': 'a change without tasks'},
        ]
        self.assertEqual(bench.count_starts(changes, 'synapse'), 2)
        self.assertEqual(bench.count_starts(changes, 'nginx'), 0)

    def test_downtime_counts_failed_polls_and_the_longest_gap(self):
        polls = [(0.0, True), (0.05, False), (0.1, False), (0.15, True), (0.2, True),
                 (0.25, False), (0.5, True)]
        failed, gap = bench.downtime(polls)
        self.assertEqual(failed, 3)
        self.assertAlmostEqual(gap, 0.3)
        self.assertEqual(bench.downtime([(0.0, True), (0.05, True)]), (0, 0.0))

    def test_the_table_prints_the_ratio_to_the_floor(self):
        row = dict(bench.summarise([record(4.0)], None), restarts=0)
        floor = bench.summarise([record(100.0)], None)
        text = bench.table([('update-status', row, floor), ('x', row, None)])
        self.assertIn('0.04', text.splitlines()[2])
        self.assertTrue(text.splitlines()[3].rstrip().endswith('-'))


if __name__ == '__main__':
    unittest.main(verbosity=1)
