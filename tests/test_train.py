"""mcu_effnet.quant.train: resume, Ctrl-C, NaN, spec checks and two-process data-parallel training.

Tiny runs: the lite network at phi -4 and 32 px, a few dozen synthetic images, a few steps.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from mcu_effnet.arch import make_spec
from mcu_effnet.data import open_data
from mcu_effnet.errors import UserError
from mcu_effnet.quant.distributed import DistContext, ResumableSampler, init_distributed
from mcu_effnet.quant.lr_schedule import warmup_cosine
from mcu_effnet.quant.options import TrainOptions
from mcu_effnet.quant.run_folder import RunFolder
from mcu_effnet.quant.train import TrainingDiverged, TrainingStopped, run_qat

SINGLE = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _spec(variant: str = "lite"):
    return make_spec(-4, resolution=32, classes=10, variant=variant, board=None)


def _data(train: int = 48, val: int = 16):
    return open_data(None, max_train=train, max_val=val)


def _options(**changes) -> TrainOptions:
    # fake-quant pick: scoring candidates as int8 files costs ~4 CPU-s each and is tested in
    # test_recipe; the two-process test below keeps it on (rank 0 scores, every rank picks)
    base = dict(
        epochs=2,
        qat_epochs=1,
        batch_size=8,
        lr=2e-3,
        workers=0,
        calibration_batches=2,
        seed=3,
        pick="fake-quant",
    )
    base.update(changes)
    return TrainOptions(**base)


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_schedule_warms_up_linearly_then_decays_to_zero():
    factor = warmup_cosine(total_steps=10, warmup_steps=4)
    values = [factor(step) for step in range(11)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(values[3:], values[4:], strict=False))
    assert values[-1] == pytest.approx(0.0, abs=1e-12)


def test_resumable_sampler_skips_exactly_the_batches_already_seen():
    full = ResumableSampler(20, SINGLE, seed=1)
    full.set_epoch(4)
    order = list(full)
    assert sorted(order) == list(range(20))
    resumed = ResumableSampler(20, SINGLE, seed=1)
    resumed.set_epoch(4)
    resumed.set_start(8)
    assert list(resumed) == order[8:] and len(resumed) == 12


def test_resume_after_ctrl_c_mid_epoch_ends_where_an_uninterrupted_run_ends(tmp_path):
    spec, data, options = _spec(), _data(), _options()
    straight = run_qat(
        spec, data, options, SINGLE, out=tmp_path / "straight", progress=False, log=lambda m: None
    )

    def ctrl_c(info):
        if (info.phase, info.epoch, info.batch) == ("float", 1, 2):
            os.kill(os.getpid(), signal.SIGINT)  # the real signal, through the real handler

    with pytest.raises(TrainingStopped, match=r"float epoch 2 after batch 2/6"):
        run_qat(
            spec,
            data,
            options,
            SINGLE,
            out=tmp_path / "cut",
            on_step=ctrl_c,
            progress=False,
            log=lambda m: None,
        )
    state = RunFolder(tmp_path / "cut").load_checkpoint()
    assert (state["phase"], state["epoch"], state["batch"]) == ("float", 1, 2)

    resumed = run_qat(
        spec, data, options, SINGLE, resume=tmp_path / "cut", progress=False, log=lambda m: None
    )
    final_straight = RunFolder(straight.run_dir).load_checkpoint()
    final_resumed = RunFolder(resumed.run_dir).load_checkpoint()
    assert final_resumed["done"] and final_resumed["phase"] == "qat"
    assert _states_equal(final_straight["model"], final_resumed["model"])
    assert _states_equal(final_straight["float_model"], final_resumed["float_model"])
    assert [r.val_top1 for r in straight.history] == [r.val_top1 for r in resumed.history]
    assert [(r.phase, r.epoch) for r in resumed.history] == [
        ("float", 1),
        ("float", 2),
        ("qat", 0),
        ("qat", 1),
    ]
    assert resumed.metrics["qat_top1"] == straight.metrics["qat_top1"]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(info):
        if (info.phase, info.epoch, info.batch) == ("float", 1, 1):
            with torch.no_grad():
                next(info.model.parameters()).fill_(float("nan"))

    with pytest.raises(
        TrainingDiverged, match=r"NaN in float epoch 2 \(batch 2\).*last good checkpoint \(float epoch 1\)"
    ):
        run_qat(_spec(), _data(), _options(), SINGLE, out=tmp_path / "run", on_step=poison, progress=False,
                log=lambda m: None)  # fmt: skip
    state = RunFolder(tmp_path / "run").load_checkpoint()
    assert (state["phase"], state["epoch"], state["batch"]) == ("float", 1, 0)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_resume_refuses_a_folder_trained_with_another_spec(tmp_path):
    def stop_at_once(info):
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingStopped):
        run_qat(_spec(), _data(), _options(), SINGLE, out=tmp_path / "run", on_step=stop_at_once, progress=False,
                log=lambda m: None)  # fmt: skip
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()}
    with pytest.raises(UserError, match=r"different spec \(variant 'lite' -> 'full'"):
        run_qat(_spec("full"), _data(), _options(), SINGLE, resume=tmp_path / "run", progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()} == before


def test_a_new_run_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="already exists and is not empty"):
        run_qat(_spec(), _data(), _options(), SINGLE, out=tmp_path / "run", progress=False)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["notes.txt"]


# ---- two processes ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    try:
        result = run_qat(_spec(), _data(train=64), _options(epochs=1, qat_epochs=1, pick="int8"), ctx, out=Path(out) / "run",
                         progress=False, log=lambda m: None)  # fmt: skip
        # Each process's own final weights, from the model it trained; rank 0 also wrote them to disk.
        torch.save(result.model.state_dict(), Path(out) / f"rank{rank}.pt")
        np.save(Path(out) / f"rank{rank}_top1.npy", np.array([result.metrics["qat_top1"]]))
    finally:
        torch.distributed.destroy_process_group()


def test_two_processes_train_data_parallel_to_identical_weights(tmp_path):
    mp.spawn(_rank_main, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    agreed = RunFolder(tmp_path / "run").load_checkpoint()
    assert _states_equal(rank0, rank1)
    assert _states_equal(rank0, agreed["model"])
    assert agreed["done"] and agreed["history"][-1]["phase"] == "qat"
    assert np.load(tmp_path / "rank0_top1.npy")[0] == np.load(tmp_path / "rank1_top1.npy")[0]
    config = RunFolder(tmp_path / "run").read_json("config.json")
    assert config["world_size"] == 2 and config["data"]["train_images"] == 64
    # Only rank 0 wrote: one run folder, no stray temporary files.
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["run"]
    assert not [p for p in (tmp_path / "run").iterdir() if ".tmp-" in p.name]
