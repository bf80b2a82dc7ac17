"""SGD-SaI under torch.distributed (gloo, CPU, spawned ranks) against single-process runs.

Ranks are spawned once per world size (2 and 4); each runs every scenario of
``_distributed_workers`` and saves a record, which these tests check. The oracle is the same model
trained in this process on the whole batch, and ``gsnr.stack_stats`` of whole gradients.
"""

from __future__ import annotations

import _distributed_workers as workers
import pytest
import torch
import torch.distributed as dist

from sgdsai import SGDSaI, gsnr
from sgdsai.distributed import check_params, grad_stats, reference

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")

WORLDS = {
    2: ["ddp", "fsdp2", "resume", "zero", "stages", "dtensor", "numel_zero_shard"],
    4: ["fsdp2", "resume", "dtensor"],
}


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, str], list[dict]]:
    import torch.multiprocessing as mp

    out = tmp_path_factory.mktemp("dist")
    result = {}
    for world, scenarios in WORLDS.items():
        mp.start_processes(
            workers.entry, args=(world, scenarios, str(out)), nprocs=world, start_method="spawn"
        )
        ranks = [torch.load(out / f"records-{world}-{r}.pt", weights_only=False) for r in range(world)]
        for name in scenarios:
            result[world, name] = [rank[name] for rank in ranks]
    return result


def get(records: dict, world: int, name: str) -> list[dict]:
    ranks = records[world, name]
    for rank in ranks:
        assert "error" not in rank, rank.get("error")
    return ranks


@pytest.fixture(scope="module")
def single() -> dict:
    """The oracle: the same model on the whole batch in one process."""
    model = workers.tiny_model()
    opt = SGDSaI(model.parameters(), workers.LR)
    record: dict = {}
    for step in range(workers.STEPS):
        workers.loss_fn(model, *workers.batch(step)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step == 0:
            record["gsnr"], record["gsnr_max"] = opt.gsnr(model), opt.param_groups[0]["gsnr_max"]
    record["params"] = {n: p.detach().clone() for n, p in model.named_parameters()}
    return record


def assert_params_close(got: dict, want: dict, rtol: float = 1e-10) -> None:
    assert got.keys() == want.keys()
    for name, value in want.items():
        torch.testing.assert_close(got[name], value, rtol=rtol, atol=1e-12, msg=name)


@pytest.mark.parametrize("world", [2, 4])
def test_fsdp2_gsnr_and_reference_equal_single_process(records, single, world):
    for rank in get(records, world, "fsdp2"):
        assert rank["gsnr"].keys() == single["gsnr"].keys()
        for name, value in single["gsnr"].items():
            assert rank["gsnr"][name] == pytest.approx(value, rel=1e-6), name
        assert rank["gsnr_max"] == pytest.approx(single["gsnr_max"], rel=1e-12)
    assert len({tuple(r["gsnr"].values()) for r in records[world, "fsdp2"]}) == 1  # same on every rank


@pytest.mark.parametrize("world", [2, 4])
def test_fsdp2_trajectory_matches_single_process(records, single, world):
    for rank in get(records, world, "fsdp2"):
        assert_params_close(rank["params"], single["params"])


@pytest.mark.parametrize("world", [2, 4])
def test_fsdp2_measuring_step_takes_one_collective_and_steady_steps_none(records, world):
    for rank in get(records, world, "fsdp2"):
        assert rank["collectives"] == [1] + [0] * (workers.STEPS - 1)


def test_ddp_ranks_end_bit_identical_without_any_collective_in_step(records, single):
    ranks = get(records, 2, "ddp")  # collectives raise inside step(): an error would show here
    for name in single["params"]:
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name])
    assert ranks[0]["gsnr"] == ranks[1]["gsnr"]
    assert ranks[0]["gsnr_max"] == ranks[1]["gsnr_max"] == pytest.approx(single["gsnr_max"], rel=1e-12)
    assert_params_close(ranks[0]["params"], single["params"])


@pytest.mark.parametrize("world", [2, 4])
def test_dtensor_grad_stats_equal_whole_tensor_stats_for_every_placement(records, world):
    cases = workers.dtensor_cases(world)
    want = gsnr.stack_stats([workers.dtensor_full_grad(i, shape) for i, (shape, _) in enumerate(cases)])
    for rank in get(records, world, "dtensor"):
        for (count, mean, m2), expected, case in zip(rank["stats"], want, cases):
            assert count == expected.count, case
            assert mean == pytest.approx(expected.mean, rel=1e-12, abs=1e-15), case
            assert m2 == pytest.approx(expected.m2, rel=1e-12), case
    assert len({str(r["stats"]) for r in records[world, "dtensor"]}) == 1  # bit-identical on all ranks


@pytest.mark.parametrize("world", [2, 4])
def test_dtensor_grad_stats_gather_once_per_sharded_mesh_dimension(records, world):
    for rank in get(records, world, "dtensor"):
        assert rank["collectives"] == {"all_gather": 1 if world == 2 else 2}


def test_numel_mode_with_a_zero_shard_matches_single_process_on_every_rank(records):
    want = workers.numel_zero_shard_run(workers.numel_zero_shard_grads())
    for rank in get(records, 2, "numel_zero_shard"):
        assert rank["measured"] == want["measured"]  # rank 1's zero shard does not defer the tensor
        for got, expected in zip(rank["params"], want["params"]):
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)
        # the measuring step ORs the flags with one all_reduce; the steady step communicates not at all
        assert rank["collectives"] == [{"all_reduce": 1}, {}]


def test_zero_redundancy_reference_is_global_and_trajectory_matches(records, single):
    ranks = get(records, 2, "zero")
    assert len({tuple(r["owned"]) for r in ranks}) == 2  # ZeRO really split the tensors
    for rank in ranks:
        assert rank["gsnr_max"] == pytest.approx(single["gsnr_max"], rel=1e-12)
        assert_params_close(rank["params"], single["params"])


def test_zero_redundancy_without_reference_group_normalises_each_rank_by_its_own_max(records):
    maxima = [r["plain_gsnr_max"] for r in get(records, 2, "zero")]
    assert maxima[0] != maxima[1]


def test_reference_group_shares_the_first_measuring_steps_maximum_across_stages(records):
    ranks = get(records, 2, "stages")
    maximum = max(gsnr.tensor_gsnr(workers.stage_grad(0, index, 0)) for index in range(3))
    for rank in ranks:
        assert (
            rank["gsnr_max"] == [pytest.approx(maximum, rel=1e-12)] * 3
        )  # rank 1 measured nothing at step 0
        assert rank["collectives"] == [1, 0, 0]  # one all_reduce, then steady
    late = [gsnr.tensor_gsnr(workers.stage_grad(1, index, 1)) for index in range(3)]
    assert ranks[1]["scales"][1] == pytest.approx([min(g / maximum, 1.0) for g in late], rel=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available() or not dist.is_nccl_available(), reason="needs CUDA")
@pytest.mark.parametrize("use_orig_params", [False, True])
def test_fsdp1_parameters_are_refused(tmp_path, use_orig_params):
    from torch.distributed.fsdp import FullyShardedDataParallel  # FSDP1 needs an accelerator

    dist.init_process_group("nccl", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = FullyShardedDataParallel(workers.tiny_model().cuda(), use_orig_params=use_orig_params)
        with pytest.raises(TypeError, match="fully_shard"):
            SGDSaI(model.parameters())
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("world", [2, 4])
def test_dcp_resume_restores_state_and_continues_exactly(records, world):
    saved = get(records, 2, "fsdp2")[0]
    for rank in get(records, world, "resume"):
        assert rank["gsnr_types"] == {(torch.float32, "cpu", 0)}
        assert rank["gsnr_loaded"] == saved["gsnr"]
        assert rank["gsnr_max_loaded"] == saved["gsnr_max"]
        assert rank["collectives"] == [0] * (workers.STEPS - workers.SAVE_AT)  # nothing measured again
        if world == 2:
            for name, value in saved["params"].items():
                assert torch.equal(rank["params"][name], value), name
        else:
            assert_params_close(rank["params"], saved["params"])


def test_plain_gradients_take_the_single_process_path():
    grads = [torch.randn(4, 3) + 0.5, torch.randn(7)]
    assert grad_stats(grads) == gsnr.stack_stats(grads)


def test_reference_without_group_is_the_local_maximum():
    assert reference([2.0, 5.0], True) == 5.0
    assert reference([], True) == 1.0  # only constant tensors measured
    assert reference([], False) is None


def test_parameters_marked_flat_by_fsdp1_are_refused():
    flat = torch.nn.Parameter(torch.zeros(10))
    flat._fsdp_flattened = True
    with pytest.raises(TypeError, match="FSDP1"):
        SGDSaI([flat])
    check_params([torch.nn.Parameter(torch.zeros(3))])
