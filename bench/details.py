"""Detail tables of the benchmarks whose JSON holds more than their summary rows, rendered from the JSON into
bench/README.md between `<!-- details:<benchmark> -->` and `<!-- /details -->` (by `bench.summary`)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + (align or "---|" * len(header))]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def _pct(value: float, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f} %"


def _stable(cell: dict[str, Any]) -> str:
    low, high = cell["wilson95"]
    return f"{cell['fired']}/{cell['windows']} = {_pct(cell['false_alarm_rate'])} ({_pct(low, 1)}-{_pct(high, 1)})"


def _drift_summary(data: dict[str, dict[str, Any]]) -> str:
    names = list(data)
    rows = []
    for size in sorted({s["size"] for d in data.values() for s in d["stable"]}):
        rows.append([f"false alarms, {size}-row stable windows (95 % CI)",
                     *[_stable(next(s for s in data[n]["stable"] if s["size"] == size)) for n in names]])
    rows.append(["detected within 2 windows, cells with drop >= 5 points",
                 *[f"{d['material_cells']['detected_within_2']}/{d['material_cells']['trials']} = "
                   f"{_pct(d['material_cells']['detection_rate_within_2'], 1)} ({d['material_cells']['cells']} cells)"
                   for d in data.values()]])
    rows.append(["detected within 1 window, same cells",
                 *[f"{d['material_cells']['detected_within_1']}/{d['material_cells']['trials']} = "
                   f"{_pct(d['material_cells']['detection_rate_within_1'], 1)}" for d in data.values()]])
    for scope, label in (("in_scope", "in-scope windows"), ("all_windows", "all windows")):
        rows.append([f"label-free accuracy MAE, {label}",
                     *[f"{d['label_free_accuracy'][scope]['mae_points']:.2f} points (bias "
                       f"{d['label_free_accuracy'][scope]['bias_points']:+.2f}; {d['label_free_accuracy'][scope]['windows']}"
                       " windows)" if scope in d["label_free_accuracy"] else "-" for d in data.values()]])
    rows.append(["calibration of the reference (median)",
                 *[f"{d['calibration']['median_seconds']:.2f} s ({d['calibration']['pool_rows']} rows)"
                   for d in data.values()]])
    rows.append(["check time per window, median / p95",
                 *[f"{d['check_seconds']['median']:.2f} s / {d['check_seconds']['p95']:.2f} s "
                   f"({d['check_seconds']['checks']} checks)" for d in data.values()]])
    rows.append(["champion: validation macro-F1, training samples/s",
                 *[f"{d['model']['val_macro_f1']:.3f}, {d['model']['samples_per_second']:.1f}" for d in data.values()]])
    return _table(["measurement", *names], rows)


def _drift_cells(name: str, cells: list[dict[str, Any]]) -> str:
    sizes = sorted({c["size"] for c in cells})
    shifts = sorted({(c["kind"], c["level"]) for c in cells}, key=lambda k: (k[0], k[1]))
    rows = []
    for kind, level in shifts:
        row = [kind, f"{level:g}"]
        for size in sizes:
            cell = next((c for c in cells if (c["kind"], c["level"], c["size"]) == (kind, level, size)), None)
            row += ([f"{cell['detected_within_1']} / {cell['detected_within_2']} of {cell['trials']}",
                     f"{cell['realised_accuracy_drop_points']:.1f}"] if cell else ["-", "-"])
        rows.append(row)
    header = [f"{name} shift", "level"] + [f"{h} ({s} rows)" for s in sizes
                                           for h in ("fired within 1 / 2 windows", "accuracy drop, points")]
    return _table(header, rows, "---|---:|" + "---:|" * 2 * len(sizes))


def drift_real_data(payload: dict[str, Any]) -> str:
    data = {name: payload[name] for name in ("clinc150", "generator") if name in payload}
    return "\n".join([_drift_summary(data), *[_drift_cells(n, d["cells"]) for n, d in data.items()]])


def label_efficiency(payload: dict[str, Any]) -> str:
    efficiency, median, spread = payload["label_efficiency"], payload["label_efficiency"]["median"], \
        payload["label_efficiency"]["spread"]
    ks = sorted({int(key.split("-k")[1]) for key in median})
    new_rows = {}
    for run in efficiency["runs"]:
        new_rows.setdefault((run["strategy"], run["k"]), []).append(run["new_domain_labels"])
    rows = []
    for k in ks:
        ratio = efficiency["ratios"].get(str(k))
        cells = []
        for strategy in ("queue", "random"):
            key = f"{strategy}-k{k}"
            cells.append(f"{median[key]:.3f} ({spread[key][0]:.3f}-{spread[key][1]:.3f})" if key in median else "")
        news = [sorted(new_rows.get((s, k), [])) for s in ("queue", "random")]
        rows.append([str(k), *cells, " / ".join(str(n[len(n) // 2]) if n else "-" for n in news),
                     f"{ratio['random_labels_needed']:.0f}" if ratio else "", f"{ratio['ratio']:.2f}x" if ratio else ""])
    queue = _table(["K", "queue macro-F1, median (min-max)", "random macro-F1", "new-domain rows among the K "
                    "(queue / random, median)", "random labels needed", "ratio"], rows, "---:|---|---|---|---:|---:|")
    saving = payload["abstention"]
    abstention = _table(["fallback cost", "threshold", "requests answered (median)",
                         "cost saving vs answering all, median (min-max)"],
                        [[cost, f"{s['threshold']:.3f}", _pct(s["coverage_median"], 1),
                          f"{_pct(s['saving_median'], 1)} ({_pct(s['saving_min'], 1)}-{_pct(s['saving_max'], 1)})"]
                         for cost, s in saving.items()], "---:|---:|---:|---|")
    topics = payload["new_topics"]
    held = [t["holding_planted"] for t in topics["trials"]]
    discovery = _table(["measurement", "value"], [
        ["purity of the candidate holding most planted requests, median (min)",
         f"{topics['purity_median']:.2f} ({topics['purity_min']:.2f})"],
        ["candidates holding planted requests, median (count of trials with 1 / 2 / 3+)",
         f"{topics['holding_planted_median']:g} ({held.count(1)} / {held.count(2)} / {sum(h >= 3 for h in held)} "
         f"of {len(held)})"],
        ["planted requests in that candidate, median", _pct(topics["recall_median"], 0)],
    ])
    return "\n".join([queue, abstention, discovery])


def incremental_vs_full(payload: dict[str, Any]) -> str:
    """Per scenario, medians over the seeds (min-max beside the F1s and times)."""
    def cell(figure: dict[str, float], digits: int, unit: str = "") -> str:
        return (f"{figure['median']:.{digits}f}{unit} ({figure['min']:.{digits}f}-{figure['max']:.{digits}f})")

    rows = []
    for name, scenario in payload["scenarios"].items():
        m = scenario["medians"]
        ratio = m["incremental_post_drift_macro_f1"]["median"] / m["full_post_drift_macro_f1"]["median"]
        time_ratio = m["incremental_seconds"]["median"] / m["full_seconds"]["median"]
        runs = scenario["runs"]
        drift = ", ".join(sorted({f"{r['drift_severity']} ({r['product_mode']})" for r in runs
                                  if "drift_severity" in r}))
        replay = statistics.median(r["incremental"]["replay_rows"] / r["incremental"]["train_rows"] for r in runs)
        rows.append([name, str(len(runs)), drift or "-", f"{m['champion_post_drift_macro_f1']['median']:.3f}",
                     _pct(replay, 0), cell(m["full_post_drift_macro_f1"], 4),
                     cell(m["incremental_post_drift_macro_f1"], 4), _pct(ratio, 1), cell(m["forgetting_points"], 2),
                     cell(m["full_seconds"], 1, " s"), cell(m["incremental_seconds"], 1, " s"), f"{time_ratio:.3f}"])
    return _table(["scenario", "seeds", "drift severity (product's mode)", "champion post-drift", "replayed rows",
                   "full F1", "incremental F1", "F1 ratio", "forgetting (points)", "full time", "incremental time",
                   "time ratio"], rows)


GPU_RUNS = {"baseline_hf_trainer_peft": "HF `Trainer` + PEFT, bf16 weights (baseline)",
            "modelops_eager": "modelops, eager", "modelops": "modelops (default on a GPU: blocks compiled)"}


def gpu_causal_lm(payload: dict[str, Any]) -> str:
    """Per run: whole-run and steady tokens/s, steady MFU, held-out loss, peak memory; then modelops / baseline."""
    runs = payload["runs"]
    rows = [[label, f"{runs[r]['tokens_per_second']:,.0f}", f"{runs[r]['steady_tokens_per_second']:,.0f}",
             _pct(runs[r]["steady_mfu"], 1), f"{runs[r]['heldout_loss']:.3f}", f"{runs[r]['peak_memory_gb']:.1f} GB"]
            for r, label in GPU_RUNS.items()]
    ours, theirs = runs["modelops"], runs["baseline_hf_trainer_peft"]
    rows.append(["ratio modelops / baseline",
                 f"{ours['tokens_per_second'] / theirs['tokens_per_second']:.2f}x",
                 f"{ours['steady_tokens_per_second'] / theirs['steady_tokens_per_second']:.2f}x", "",
                 f"{ours['heldout_loss'] - theirs['heldout_loss']:+.3f}",
                 f"{ours['peak_memory_gb'] / theirs['peak_memory_gb']:.2f}x"])
    return _table(["run", "whole run tokens/s", "steady tokens/s", "steady MFU", "held-out loss", "peak memory"], rows)


SERVERS = {"naive-threadpool": "naive per-request", "naive-batched": "batched transformers",
           "modelops-int8": "modelops int8", "modelops-fp32": "modelops fp32", "modelops-pytorch": "modelops PyTorch"}


def serving_latency(payload: dict[str, Any]) -> str:
    """Per text mix and concurrency, each server's requests per second (p50 / p99 latency in ms)."""
    rows = []
    for mix, levels in payload["levels"].items():
        for level in levels:
            rows.append([f"{mix}, c{level['concurrency']}",
                         *[f"{level[s]['throughput_rps']:.0f} ({level[s]['p50_ms']:.1f} / {level[s]['p99_ms']:.0f})"
                           for s in SERVERS]])
    return _table(["mix, concurrency", *SERVERS.values()], rows)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {"drift_real_data": drift_real_data,
                                                          "gpu_causal_lm": gpu_causal_lm,
                                                          "incremental_vs_full": incremental_vs_full,
                                                          "label_efficiency": label_efficiency,
                                                          "serving_latency": serving_latency}
