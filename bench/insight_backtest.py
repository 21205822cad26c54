"""How well the decisions predict: the recommendation back-test (hit rate, and the weights a
search would pick — reported, never written) on the made-up year of campaigns of
tests/insight_decisions.py, and the units forecast on synthetic weekly-seasonal series
against the naive last value.

    .venv/bin/python bench/insight_backtest.py [--database URL] [--series 12]

Default database: a fresh SQLite file. tests/test_insight_recommend.py and
tests/test_insight_forecast.py assert the same figures are sane.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bot.wiring  # noqa: E402,F401  (registers every feature)
from bot.insight import forecast, recommend_backtest  # noqa: E402
from storage.db import Database, upgrade  # noqa: E402
from tests import insight_decisions  # noqa: E402
from tests.test_insight_forecast import synthetic  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", help="an empty database URL (default: a SQLite file)")
    parser.add_argument("--series", type=int, default=12)
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/backtest.db"
    upgrade(url)
    db = Database(url)
    insight_decisions.build(db)
    started = time.perf_counter()
    with db.session() as session:
        found = recommend_backtest.report(session, with_tuning=True)
    bt, tuning = found["backtest"], found["tuning"]
    print(f"recommendation back-test ({found['policy']}, {bt['cases']} campaigns, "
          f"{time.perf_counter() - started:.1f} s)")
    for row in bt["rows"]:
        mark = {True: "hit ", False: "MISS", None: "—   "}[row["hit"]]
        print(f"  {mark} {row['campaign']:<16} {row['verdict']:<8} {row['score']:>3}  "
              f"paid={row['paid']!s:<5} net {row['net_rate']}")
    print(f"  hit rate {bt['hit_rate']:.0%} ({bt['hits']}/{bt['decided']} clear verdicts; "
          f"verdicts {bt['verdicts']})")
    print(f"  tuned: hit rate {tuning['hit_rate']:.0%} with {tuning['weights']} "
          f"(changed: {tuning['changed'] or 'none'}; reported, not written)")
    started = time.perf_counter()
    series = synthetic(args.series)
    fc = forecast.backtest(series, horizon=7)
    print(f"forecast back-test ({fc['series']} series × 7 days held out, "
          f"{time.perf_counter() - started:.1f} s)")
    print(f"  MAE {fc['mae']:.2f} units/day vs naive last value {fc['mae_naive']:.2f} "
          f"({1 - fc['mae'] / fc['mae_naive']:.0%} better); 80 % interval covered "
          f"{fc['coverage']:.0%}")
    db.dispose()


if __name__ == "__main__":
    main()
