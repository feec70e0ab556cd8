"""The benchmark record: reported rows cannot claim a met target, and bench/README.md's tables come from the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.machine import Measurement, code_changes
from bench.summary import build_summary, render_readme

RUN = {"git_commit": "0123456789abcdef", "git_tree_clean": True,
       "library_versions": {"torch": "2.13.0", "transformers": "5.0", "peft": "0.18", "dagster": "1.12",
                            "mlflow": "3.6", "evidently": "0.7.23"}}


def test_a_reported_figure_cannot_say_met() -> None:
    with pytest.raises(ValueError, match="met must be None"):
        Measurement("serving_p50_ms_c1", 31.0, "ms", 26.0, "reported (lower is better)", True)
    assert Measurement("serving_p50_ms_c1", 31.0, "ms", 26.0, "reported (lower is better)", None).met is None


def test_rows_carry_commit_and_versions_and_the_readme_tables_are_regenerated(tmp_path: Path) -> None:
    rows = [Measurement("train_throughput_vs_tuned_trainer_generator", 40.0, "samples/s", 32.0, ">= 1.5x", False),
            Measurement("train_macro_f1_delta_generator", -0.001, "macro-F1", None, "within 0.005", True)]
    (tmp_path / "train_throughput.json").write_text(json.dumps(
        {"measurements": [m.to_dict("2-core test (cpu)", RUN) for m in rows]}))
    (tmp_path / "sensor_tick.json").write_text(json.dumps(
        {"measurements": [Measurement("sensor_tick_no_batches_seconds", 0.01, "s", 0.01, "reported", None)
                          .to_dict("2-core test (cpu)", {**RUN, "git_tree_clean": False})]}))
    summary = build_summary(tmp_path)
    assert all(row["commit"] == RUN["git_commit"] and row["versions"]["evidently"] == "0.7.23" for row in summary)
    readme = ("# Benchmarks\n\nprose stays\n\n<!-- figures:train_throughput -->\n| stale | hand-copied |\n"
              "<!-- /figures -->\n\nmore prose\n<!-- figures:sensor_tick -->\n<!-- /figures -->\n"
              "<!-- figures:serving_latency -->\nold\n<!-- /figures -->\n")
    rendered = render_readme(readme, summary)
    assert "hand-copied" not in rendered and "prose stays" in rendered and "more prose" in rendered
    training = rendered.split("<!-- figures:train_throughput -->")[1].split("<!-- /figures -->")[0]
    assert "`train_throughput_vs_tuned_trainer_generator` | 40 | samples/s | 32 | 1.25x" in training
    assert "**missed**" in training and "**met**" in training and "01234567" in training
    assert "sensor_tick" not in training  # each block holds its own benchmark's rows only
    ticks = rendered.split("<!-- figures:sensor_tick -->")[1].split("<!-- /figures -->")[0]
    assert "| reported |" in ticks and "01234567 (dirty)" in ticks
    assert "(no results: run `python -m bench.serving_latency`)" in rendered
    assert render_readme(rendered, summary) == rendered  # regenerating is stable


def test_rows_written_before_per_row_provenance_take_their_run_s(tmp_path: Path) -> None:
    row = {"name": "drift_check_seconds_100k", "value": 0.7, "unit": "s", "baseline": None, "target": "< 2 s",
           "met": True, "ratio": None, "machine": "2-core test (cpu)"}
    (tmp_path / "drift_check_time.json").write_text(json.dumps({"provenance": RUN, "measurements": [row]}))
    (tmp_path / "serving_latency.json").write_text(json.dumps({"measurements": [row]}))  # no provenance at all
    by_benchmark = {r["benchmark"]: r for r in build_summary(tmp_path)}
    assert by_benchmark["drift_check_time"]["commit"] == RUN["git_commit"]
    assert by_benchmark["drift_check_time"]["versions"]["torch"] == "2.13.0"
    assert "commit" not in by_benchmark["serving_latency"]  # shown as "not recorded", never invented
    assert "| not recorded |" in render_readme("<!-- figures:serving_latency -->\n<!-- /figures -->\n",
                                               list(by_benchmark.values()))


def test_earlier_results_do_not_make_the_tree_dirty_but_code_and_docs_do() -> None:
    porcelain = [" M bench/results/sensor_tick.json", "?? bench/results/new.json", " M bench/serving_latency.py",
                 "M  README.md"]
    assert code_changes(porcelain) == [" M bench/serving_latency.py", "M  README.md"]


def test_detail_tables_are_rendered_from_the_benchmark_json(tmp_path: Path) -> None:
    runs = [{"strategy": s, "k": 50, "seed": seed, "new_domain_labels": n}
            for s, n in (("queue", 29), ("random", 14)) for seed in range(3)]
    payload = {"label_efficiency": {"runs": runs, "median": {"queue-k50": 0.59, "random-k50": 0.56},
                                    "spread": {"queue-k50": [0.58, 0.60], "random-k50": [0.55, 0.57]},
                                    "ratios": {"50": {"random_labels_needed": 163.4, "ratio": 3.268}}},
               "abstention": {"0.3": {"threshold": 0.64, "saving_median": 0.447, "saving_min": 0.398,
                                      "saving_max": 0.479, "coverage_median": 0.556}},
               "new_topics": {"trials": [{"holding_planted": 1}, {"holding_planted": 2}], "purity_median": 1.0,
                              "purity_min": 0.96, "holding_planted_median": 1.5, "recall_median": 0.62}}
    (tmp_path / "label_efficiency.json").write_text(json.dumps(payload))
    readme = "prose\n<!-- details:label_efficiency -->\n| hand-copied | 0.1 |\n<!-- /details -->\nafter\n"
    rendered = render_readme(readme, [], tmp_path)
    assert "hand-copied" not in rendered and rendered.startswith("prose\n") and rendered.endswith("after\n")
    assert "| 50 | 0.590 (0.580-0.600) | 0.560 (0.550-0.570) | 29 / 14 | 163 | 3.27x |" in rendered
    assert "| 0.3 | 0.640 | 55.6 % | 44.7 % (39.8 %-47.9 %) |" in rendered
    assert "1.5 (1 / 1 / 0 of 2)" in rendered
    assert render_readme(rendered, [], tmp_path) == rendered


def test_serving_and_gpu_tables_are_rendered_from_their_json(tmp_path: Path) -> None:
    def server(rps: float, p50: float, p99: float) -> dict[str, float]:
        return {"throughput_rps": rps, "p50_ms": p50, "p99_ms": p99}

    level = {"concurrency": 16, "naive-threadpool": server(85.6, 184.1, 261.8), "naive-batched": server(141, 108, 160),
             "modelops-int8": server(520.8, 29.4, 49.0), "modelops-fp32": server(318, 50, 73),
             "modelops-pytorch": server(160, 97, 137)}
    (tmp_path / "serving_latency.json").write_text(json.dumps({"levels": {"clinc150": [level]}}))
    run = {"tokens_per_second": 40000.0, "steady_tokens_per_second": 42000.0, "steady_mfu": 0.185,
           "heldout_loss": 1.865, "peak_memory_gb": 19.9}
    fast = {**run, "steady_tokens_per_second": 84000.0, "heldout_loss": 1.9, "peak_memory_gb": 13.9}
    (tmp_path / "gpu_causal_lm.json").write_text(json.dumps(
        {"runs": {"baseline_hf_trainer_peft": run, "modelops_eager": run, "modelops": fast}}))
    readme = ("<!-- details:serving_latency -->\nold\n<!-- /details -->\n"
              "<!-- details:gpu_causal_lm -->\nold\n<!-- /details -->\n")
    rendered = render_readme(readme, [], tmp_path)
    assert "old" not in rendered
    assert "| clinc150, c16 | 86 (184.1 / 262) | 141 (108.0 / 160) | 521 (29.4 / 49) |" in rendered
    assert "| ratio modelops / baseline | 1.00x | 2.00x |  | +0.035 | 0.70x |" in rendered
