"""Env-steps/s against batch size (1 to 16,384) for each family, under the strict protocol
(issue 18). The sweep, table and plot live in `plot_scaling.py`; this benchmark runs the
same sweep and draws the plot into pytest's temporary directory (regenerate the README's
docs/scaling.png with `python benchmarks/plot_scaling.py`).

Run: `pytest benchmarks/test_scaling.py -s -p no:randomly` (several minutes on 2 cores).
"""

from __future__ import annotations

import pytest
from plot_scaling import BATCHES, FAMILIES, markdown_table, plot, sweep, write_csv


@pytest.mark.parametrize("family", list(FAMILIES))
def test_scaling(benchmark, family, tmp_path):
    benchmark.group = "scaling"
    rows, context = benchmark.pedantic(
        sweep, args=({family: FAMILIES[family]}, BATCHES), rounds=1, iterations=1
    )
    benchmark.extra_info.update(
        {
            "family": family,
            "env_id": FAMILIES[family],
            "protocol": "strict (issue 18)",
            "env_steps_per_s": {r["batch"]: round(r["env_steps_per_s"]) for r in rows},
            **context,
        }
    )
    write_csv(rows, tmp_path / "scaling.csv")
    plot(rows, tmp_path / "scaling.png", context)
    print(f"\n{markdown_table(rows)}\ncontext: {context}")
    assert (tmp_path / "scaling.png").stat().st_size > 0
    rate = {r["batch"]: r["env_steps_per_s"] for r in rows}
    # Batching must pay: the best batch steps well over one environment's rate (the smallest
    # gain on a 2-core CPU is Connector's, about 2.5x, whose 10 agents saturate it by 64).
    assert max(rate.values()) > 1.5 * rate[1]
