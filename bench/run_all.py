"""Run every benchmark in this folder (each writes bench/results/<name>.json)."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ["bench.train_throughput", "bench.drift_check_time", "bench.drift_real_data", "bench.sensor_tick",
              "bench.serving_latency", "bench.serving_int8_quality", "bench.serving_swap", "bench.generation_serving",
              "bench.gpu_generation_loop", "bench.incremental_vs_full",
              "bench.e2e_drift_to_promotion", "bench.gpu_causal_lm",
              "bench.multi_adapter_memory", "bench.label_efficiency", "bench.batch_order_f1"]


def main() -> int:
    failed = [name for name in BENCHMARKS if subprocess.call([sys.executable, "-m", name]) != 0]
    subprocess.call([sys.executable, "-m", "bench.summary"])
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
