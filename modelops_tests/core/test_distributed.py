"""Data-parallel helpers in a real two-process Gloo group: sharding, gradient averaging, broadcasting the job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelops.core.training.distributed import average_gradients, broadcast_from_first, shard, world


def _member(rank: int, store: str, out_dir: str) -> None:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        weight = torch.nn.Parameter(torch.zeros(3))
        frozen = torch.nn.Parameter(torch.zeros(2))  # no gradient on this process: counts as zero
        (weight * torch.tensor([1.0, 2.0, 3.0]) * (rank + 1)).sum().backward()
        average_gradients([weight, frozen])
        job = broadcast_from_first({"from": "rank 0"} if rank == 0 else None)
        Path(out_dir, f"{rank}.json").write_text(json.dumps({
            "world": world(), "grad": weight.grad.tolist(), "frozen": frozen.grad.tolist(), "job": job,
            "shard": shard([[0, 1, 2, 3, 4], [5, 6, 7], [8]])}))
    finally:
        dist.destroy_process_group()


def test_two_processes_step_on_their_shares_with_averaged_gradients(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_member, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    first, second = (json.loads((tmp_path / f"{rank}.json").read_text()) for rank in (0, 1))
    assert first["world"] == [0, 2] and second["world"] == [1, 2]
    assert first["grad"] == second["grad"] == pytest.approx([1.5, 3.0, 4.5])  # mean of (1,2,3) and (2,4,6)
    assert first["frozen"] == second["frozen"] == [0.0, 0.0]
    assert first["job"] == second["job"] == {"from": "rank 0"}
    # every row of a batch goes to exactly one process; a batch smaller than the group is dropped by both
    assert first["shard"] == [[0, 2, 4], [5, 7]] and second["shard"] == [[1, 3], [6]]


def test_alone_nothing_changes() -> None:
    assert world() == (0, 1)
    batches = [[0, 1], [2]]
    assert shard(batches) is batches
    assert broadcast_from_first("job") == "job"
