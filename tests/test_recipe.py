"""The training recipe: settable augmentation, weight EMA, best-checkpoint export, --init and distillation.

Tiny runs: the lite network at phi -4 and 32 px, a few dozen synthetic images, a few steps.
"""

from __future__ import annotations

import math
import os
import shutil
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mcu_effnet.arch import make_spec
from mcu_effnet.data import ImageDataset, open_data
from mcu_effnet.data.augment import AugmentConfig, MixedBatch, apply_policy, mix_batch
from mcu_effnet.errors import UserError
from mcu_effnet.quant.distributed import DistContext
from mcu_effnet.quant.options import TrainOptions
from mcu_effnet.quant.recipe import Best, ModelEMA, RecipeLoss
from mcu_effnet.quant.run_folder import RunFolder
from mcu_effnet.quant.train import TrainingStopped, run_qat

SINGLE = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(n: int = 6, size: int = 16) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


# ---- augmentation ----------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["none", "light", "strong"])
def test_policy_keeps_shape_dtype_and_is_reproducible_per_seed(policy):
    image = _images(1)[0]
    a = apply_policy(image, policy, np.random.default_rng([1, 2, 3]))
    b = apply_policy(image, policy, np.random.default_rng([1, 2, 3]))
    assert a.shape == image.shape and a.dtype == torch.uint8 and torch.equal(a, b)
    if policy == "none":
        assert torch.equal(a, image)
    else:  # some draw among a few seeds changes the image
        outs = [apply_policy(image, policy, np.random.default_rng([s])) for s in range(6)]
        assert any(not torch.equal(o, image) for o in outs)


def _dataset(**recipe) -> ImageDataset:
    data = open_data(None, max_train=12, max_val=4)
    return ImageDataset(data.train, 32, augment=True, seed=5, recipe=AugmentConfig(**recipe))


def test_hflip_zero_never_flips_and_one_always_flips():
    # The flip is drawn last from the same generator: flip=1 is the mirror of flip=0.
    never, always = _dataset(hflip=0.0), _dataset(hflip=1.0)
    for i in range(len(never)):
        (a, la), (b, lb) = never[i], always[i]
        assert la == lb and torch.equal(a.flip(-1), b)


@pytest.mark.parametrize("recipe", [dict(crop_scale=(0.3, 0.8)), dict(policy="strong"), dict(hflip=0.3)])
def test_dataset_augmentation_keeps_labels_and_shapes_and_repeats_per_seed(recipe):
    first, second, plain = _dataset(**recipe), _dataset(**recipe), _dataset()
    for i in range(len(first)):
        (a, la), (b, lb), (_, lp) = first[i], second[i], plain[i]
        assert a.shape == (3, 32, 32) and a.dtype == torch.uint8
        assert la == lb == lp and torch.equal(a, b)
    other_seed = ImageDataset(first.source, 32, augment=True, seed=6, recipe=first.recipe)
    assert any(not torch.equal(first[i][0], other_seed[i][0]) for i in range(len(first)))


def test_crop_scale_below_one_changes_the_crop():
    small, full = _dataset(crop_scale=(0.2, 0.3), hflip=0.0), _dataset(hflip=0.0)
    assert any(not torch.equal(small[i][0], full[i][0]) for i in range(len(small)))


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing_keeps_shapes_and_labels_and_is_reproducible(kind):
    x, y = _images(8), torch.arange(8)
    config = AugmentConfig(**{kind: 1.0})
    a = mix_batch(x, y, config, np.random.default_rng(4))
    b = mix_batch(x, y, config, np.random.default_rng(4))
    assert a.x.shape == x.shape and a.x.dtype == torch.uint8 and torch.equal(a.x, b.x) and a.lam == b.lam
    assert torch.equal(a.y_a, y) and sorted(a.y_b.tolist()) == y.tolist() and 0.0 <= a.lam <= 1.0
    off = mix_batch(x, y, AugmentConfig(), np.random.default_rng(4))
    assert off.x is x and off.lam == 1.0


def test_cutmix_label_weight_is_the_kept_area():
    x = torch.zeros(4, 1, 10, 10, dtype=torch.uint8)
    x[1:] = 255  # image 0 black, the others white
    batch = mix_batch(x, torch.arange(4), AugmentConfig(cutmix=1.0), np.random.default_rng(0))
    for i in range(4):
        source = int(batch.y_b[i])
        if (x[i] == x[source]).all():
            continue
        kept = float((batch.x[i] == x[i]).float().mean())
        assert kept == pytest.approx(batch.lam)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(hflip=1.5), "hflip must be in [0, 1]"),
        (dict(hflip=-0.1), "hflip must be in [0, 1]"),
        (dict(crop_scale=(0.0, 1.0)), "crop_scale must be"),
        (dict(augment="wild"), "augment must be one of"),
        (dict(ema=1.0), "ema must be in"),
    ],
)
def test_bad_recipe_options_are_user_errors(changes, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TrainOptions(**changes)


# ---- EMA and losses --------------------------------------------------------------------------


def test_ema_follows_the_decay_with_its_warm_up():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = ModelEMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # first step: decay min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.module.weight, torch.full_like(model.weight, 0.9))
    ema.update(model)  # second: min(0.9, 2/11)
    d = 2 / 11
    assert torch.allclose(ema.module.weight, torch.full_like(model.weight, d * 0.9 + (1 - d)))
    for _ in range(200):
        ema.update(model)
    assert ema.current_decay() == 0.9 and ema.updates == 202


def test_distillation_loss_is_the_stated_mix_of_cross_entropy_and_softened_kl():
    torch.manual_seed(0)
    teacher = nn.Linear(4, 3)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
    logits = torch.randn(5, 3)
    batch = MixedBatch(x, y, y, 1.0)
    plain = RecipeLoss(0.0)(logits, x, batch)
    assert torch.allclose(plain, F.cross_entropy(logits, y))
    alpha, t = 0.3, 2.0
    loss = RecipeLoss(0.0, teacher, None, alpha, t)(logits, x, batch)
    p_teacher = F.softmax(teacher(x) / t, dim=1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(logits / t, dim=1))).sum(1).mean()
    assert torch.allclose(loss, (1 - alpha) * F.cross_entropy(logits, y) + alpha * t * t * kl, atol=1e-6)
    # A student that matches the teacher has no distillation term left.
    same = RecipeLoss(0.0, teacher, None, 1.0, t)(teacher(x).detach(), x, batch)
    assert float(same) == pytest.approx(0.0, abs=1e-6)


def test_mixed_targets_weight_the_two_cross_entropies():
    logits, y_a, y_b = torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 1, 1])
    loss = RecipeLoss(0.0)(logits, logits, MixedBatch(logits, y_a, y_b, 0.25))
    expected = 0.25 * F.cross_entropy(logits, y_a) + 0.75 * F.cross_entropy(logits, y_b)
    assert torch.allclose(loss, expected)


def test_best_keeps_the_first_of_equal_results():
    model = nn.Linear(1, 1)
    best = Best.empty()
    assert best.offer(1, "raw", 50.0, model) and not best.offer(2, "ema", 50.0, model)
    assert best.offer(3, "ema", 60.0, model) and best.summary() == {
        "weights": "ema",
        "epoch": 3,
        "val_top1": 60.0,
    }


def test_best_by_int8_ranks_the_int8_top1_first_then_the_fake_quant_top1():
    model = nn.Linear(1, 1)
    best = Best.empty()
    assert best.offer(0, "calibrated", 90.0, model, int8_top1=80.0)
    assert not best.offer(1, "raw", 95.0, model, int8_top1=79.0)  # better fake-quant, worse file
    assert best.offer(1, "ema", 91.0, model, int8_top1=80.0)  # same file accuracy, better fake-quant
    assert not best.offer(2, "raw", 91.0, model, int8_top1=80.0)  # a full tie keeps the earlier
    best.skip(2, "ema", 88.0, "too far below")
    assert not best.offer(2, "ema", 88.0, model)  # not scored in int8: never beats a scored one
    assert best.summary() == {"weights": "ema", "epoch": 1, "val_top1": 91.0, "int8_val_top1": 80.0,
                              "candidates": 5, "scored": 4,
                              "skipped": [{"epoch": 2, "weights": "ema", "val_top1": 88.0,
                                           "reason": "too far below"}]}  # fmt: skip
    restored = Best.from_dict(best.to_dict())  # as a resumed run sees it
    assert restored.summary() == best.summary() and restored.best_top1 == 95.0


@pytest.mark.parametrize(
    ("fake_quant", "best", "margin", "scored"),
    [(99.0, 99.5, 0.5, True), (98.9, 99.5, 0.5, False), (99.6, 99.5, 0.0, True), (99.4, 99.5, 0.0, False),
     (10.0, -math.inf, 0.0, True), (50.0, 99.0, 100.0, True)],
)  # fmt: skip
def test_skip_reason_scores_the_candidates_within_the_margin_of_the_best(fake_quant, best, margin, scored):
    from mcu_effnet.quant.int8_pick import skip_reason

    reason = skip_reason(fake_quant, best, margin)
    assert (reason is None) == scored
    if not scored:
        assert f"{fake_quant:.2f}%" in reason and f"{best:.2f}%" in reason and f"{margin:g} points" in reason


# ---- runs ------------------------------------------------------------------------------------


def _spec(phi: float = -4):
    return make_spec(phi, resolution=32, classes=10, variant="lite", board=None)


def _data():
    return open_data(None, max_train=32, max_val=16)


def _options(**changes) -> TrainOptions:
    base = dict(
        epochs=2, qat_epochs=1, batch_size=8, lr=2e-3, workers=0, calibration_batches=2, seed=3, ema=0.9
    )
    base.update(changes)
    return TrainOptions(**base)


def _quiet(message: str) -> None:
    pass


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """One finished run with EMA: checked itself, then the teacher and the --init source of the others."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("recipe") / "base"
    return run_qat(_spec(), _data(), _options(), SINGLE, out=out, progress=False, log=_quiet)


def test_run_exports_the_best_checkpoint_and_says_which(base_run):
    result = base_run
    exported = result.metrics["exported"]
    assert set(exported) == {"float", "qat"}
    history = result.history
    float_scores = [r.val_top1 for r in history if r.phase == "float"] + [
        r.ema_val_top1 for r in history if r.phase == "float"
    ]
    assert exported["float"]["val_top1"] == max(float_scores) == result.metrics["float_top1"]
    # QAT: (int8 top-1 in TFLite Micro, fake-quant top-1) of every candidate, the first best exported
    qat = [(r.int8_val_top1, r.val_top1) for r in history if r.phase == "qat"] + [
        (r.ema_int8_val_top1, r.ema_val_top1) for r in history if r.phase == "qat" and r.epoch > 0
    ]
    assert len(qat) == exported["qat"]["candidates"] == 3 and not any(math.isnan(fq) for _, fq in qat)
    # in offer order (calibrated, raw, EMA), a candidate is scored unless its fake-quant top-1 is more
    # than the margin below the best before it
    best_so_far, scored = -math.inf, []
    for int8, fake_quant in qat:
        assert math.isnan(int8) == (fake_quant < best_so_far - _options().pick_margin)
        best_so_far = max(best_so_far, fake_quant)
        scored += [] if math.isnan(int8) else [(int8, fake_quant)]
    assert (exported["qat"]["int8_val_top1"], exported["qat"]["val_top1"]) == max(scored)
    assert exported["qat"]["scored"] == len(scored) and len(exported["qat"]["skipped"]) == 3 - len(scored)
    assert exported["qat"]["val_top1"] == result.metrics["qat_top1"]
    assert exported["qat"]["picked_by"].startswith("int8 top-1 in TFLite Micro on 16 validation images")
    assert all(not math.isnan(r.ema_val_top1) for r in history if r.epoch > 0)
    checkpoint = RunFolder(result.run_dir).load_checkpoint()
    best = checkpoint["best"]["state"]
    assert all(torch.equal(best[k], checkpoint["model"][k]) for k in best)
    assert (result.run_dir / "curves.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("pick", "macs", "val", "expected"),
    [
        ("auto", 3_006_032, 359, 359),  # digits at phi -4, 32 px: every image
        ("auto", 3_006_032, 10_000, 1330),  # CIFAR-10's test split: as many as 4 G MACs allow
        ("auto", 112_620_240, 300, 0),  # the demo's phi -1 at 128 px: by fake-quant
        ("int8", 112_620_240, 300, 300),
        ("int8", 3_006_032, 10_000, 2000),
        ("fake-quant", 3_006_032, 359, 0),
    ],
)
def test_images_to_score_follow_the_pick_and_the_cost(pick, macs, val, expected):
    from mcu_effnet.quant.int8_pick import images_to_score

    assert images_to_score(pick, macs, val) == expected


def test_exported_int8_top1_is_the_simulators_on_the_exported_weights(base_run):
    """The pick's figure, from the TFLite Micro interpreter, against the host simulator (bit-exact
    with TFLite Micro, another implementation) on the weights the checkpoint exports."""
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.oracle import top1
    from mcu_effnet.quant.int8_pick import int8_file
    from mcu_effnet.quant.tflite_check import labelled_chunks, quantize_like_onnx
    from mcu_effnet.sim import run as simulate

    checkpoint = RunFolder(base_run.run_dir).load_checkpoint()
    exported = int8_file(_spec(), checkpoint["model"])  # a fresh model, as export_run loads it
    graph = load_tflite(exported)
    tin = graph.tensors[graph.inputs[0]]
    _, images, labels = next(labelled_chunks(ImageDataset(_data().val, 32, augment=False), 64))
    pixels = np.transpose(images.astype(np.float32) / np.float32(255.0), (0, 2, 3, 1))
    logits = simulate(graph, quantize_like_onnx(pixels, float(tin.scale[0]), int(tin.zero_point[0])))
    logits = logits[0] if isinstance(logits, list) else logits
    simulated = 100.0 * float(np.mean(top1(logits) == labels))
    assert simulated == pytest.approx(base_run.metrics["exported"]["qat"]["int8_val_top1"])


def test_a_reused_scratch_model_writes_the_bytes_of_a_fresh_one(base_run):
    """The pick loads every candidate into one scratch model: after another candidate's export
    through it, the file of the exported weights is the one a fresh model writes."""
    from mcu_effnet.quant.int8_pick import int8_file, scratch_model

    exported = RunFolder(base_run.run_dir).load_checkpoint()["model"]
    # another candidate: every floating-point tensor (weights, biases, learned scales) 1.5 times larger
    other = {k: v * 1.5 if v.is_floating_point() else v for k, v in exported.items()}
    fresh, scratch = int8_file(_spec(), exported), scratch_model(_spec())
    assert int8_file(_spec(), other, scratch) != fresh
    assert int8_file(_spec(), exported, scratch) == fresh


def test_pick_changes_only_which_weights_ship(tmp_path, base_run, monkeypatch):
    """--pick fake-quant trains the very same candidates (scoring draws no training randomness);
    with a scripted int8 scorer the candidate it ranks first is exported whatever the fake-quant says."""
    plain = run_qat(_spec(), _data(), _options(pick="fake-quant"), SINGLE, out=tmp_path / "plain",
                    progress=False, log=_quiet)  # fmt: skip
    columns = ("val_loss", "val_top1", "ema_val_top1", "train_loss")
    np.testing.assert_array_equal(  # the same arithmetic in the same order: equal, NaNs included
        [[getattr(r, c) for c in columns] for r in plain.history],
        [[getattr(r, c) for c in columns] for r in base_run.history],
    )
    assert all(math.isnan(r.int8_val_top1) for r in plain.history)
    assert "int8_val_top1" not in plain.metrics["exported"]["qat"]
    assert plain.metrics["exported"]["qat"]["picked_by"].startswith("fake-quant top-1")

    scripted = iter([20.0, 10.0, 30.0])  # calibrated, raw epoch 1, EMA epoch 1
    monkeypatch.setattr("mcu_effnet.quant.train.Int8Scorer.top1", lambda self, model: next(scripted))
    lines: list[str] = []
    picked = run_qat(_spec(), _data(), _options(pick_margin=100), SINGLE, out=tmp_path / "picked",
                     progress=False, log=lines.append)  # fmt: skip
    exported = picked.metrics["exported"]["qat"]
    assert (exported["weights"], exported["epoch"], exported["int8_val_top1"]) == ("ema", 1, 30.0)
    checkpoint = RunFolder(picked.run_dir).load_checkpoint()
    ema = checkpoint["ema"]["module"]
    assert all(torch.equal(checkpoint["model"][k], ema[k]) for k in ema)
    assert any(
        line.startswith("qat: keeping the ema weights of epoch 1 (int8 30.00% in TFLite Micro")
        for line in lines
    )


def test_pick_scores_only_candidates_near_the_best_fake_quant_and_says_which_it_skipped(
    tmp_path, monkeypatch
):
    """Scripted fake-quant and int8 figures: candidates more than the margin below the best fake-quant
    offered before them are not scored; the export is the best int8 file among the scored ones."""
    from mcu_effnet.quant import train

    def is_quant(model) -> bool:
        return any(type(m).__module__.startswith("brevitas") for m in model.modules())

    # calibrated, raw 1, EMA 1, raw 2, EMA 2 (margin 0.5): scored, skipped, scored, scored, skipped
    fake_quant = iter([90.0, 80.0, 89.6, 95.0, 94.4])
    real_evaluate = train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda model, loader, ctx: (
        (0.5, next(fake_quant)) if is_quant(model) else real_evaluate(model, loader, ctx)))  # fmt: skip
    int8 = iter([70.0, 85.0, 80.0])  # calibrated, EMA 1, raw 2
    monkeypatch.setattr(train.Int8Scorer, "top1", lambda self, model: next(int8))
    lines: list[str] = []
    result = run_qat(_spec(), _data(), _options(epochs=1, qat_epochs=2, pick_margin=0.5), SINGLE, out=tmp_path / "run",
                     progress=False, log=lines.append)  # fmt: skip
    assert next(int8, None) is None and next(fake_quant, None) is None  # three files scored
    exported = result.metrics["exported"]["qat"]
    assert (exported["weights"], exported["epoch"], exported["int8_val_top1"]) == ("ema", 1, 85.0)
    assert (exported["candidates"], exported["scored"]) == (5, 3)
    assert [(s["weights"], s["epoch"], s["val_top1"]) for s in exported["skipped"]] == [
        ("raw", 1, 80.0),
        ("ema", 2, 94.4),
    ]
    assert "more than 0.5 points below the best so far (95.00%)" in exported["skipped"][1]["reason"]
    qat = [r for r in result.history if r.phase == "qat"]
    assert [r.int8_val_top1 for r in qat[1:]] == [pytest.approx(math.nan, nan_ok=True), 80.0]
    assert [r.ema_int8_val_top1 for r in qat[1:]] == [85.0, pytest.approx(math.nan, nan_ok=True)]
    assert any(
        "the best of 3 scored candidates, 2 not scored" in line and "raw 1, ema 2" in line for line in lines
    )
    assert RunFolder(result.run_dir).load_checkpoint()["best"]["skipped"] == exported["skipped"]


def _ctrl_c_at(phase: str, epoch: int, batch: int):
    def on_step(info):
        if (info.phase, info.epoch, info.batch) == (phase, epoch, batch):
            os.kill(os.getpid(), signal.SIGINT)  # the real signal, through the real handler

    return on_step


@pytest.mark.parametrize("stop", [("float", 0, 2), ("qat", 0, 1)])
def test_resume_with_ema_and_a_teacher_ends_where_an_uninterrupted_run_ends(tmp_path, base_run, stop):
    data = _data()
    options = _options(epochs=1, teacher=str(base_run.run_dir), distill_alpha=0.5, mixup=0.4, augment="light")
    whole = run_qat(_spec(), data, options, SINGLE, out=tmp_path / "whole", progress=False, log=_quiet)
    with pytest.raises(TrainingStopped):
        run_qat(_spec(), data, options, SINGLE, out=tmp_path / "cut", progress=False, log=_quiet,
                on_step=_ctrl_c_at(*stop))  # fmt: skip
    resumed = run_qat(_spec(), data, options, SINGLE, resume=tmp_path / "cut", progress=False, log=_quiet)
    a = RunFolder(tmp_path / "whole").load_checkpoint()
    b = RunFolder(tmp_path / "cut").load_checkpoint()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["ema"]["module"][k], b["ema"]["module"][k]) for k in a["ema"]["module"])
    assert resumed.metrics["exported"] == whole.metrics["exported"]
    assert resumed.metrics["teacher_top1"] == whole.metrics["teacher_top1"] is not None


def test_init_starts_from_another_runs_float_weights_and_refuses_another_spec(tmp_path, base_run):
    data = _data()
    float_weights = RunFolder(base_run.run_dir).load_checkpoint()["float_model"]
    second = run_qat(_spec(), data, _options(epochs=0, qat_epochs=1, init=str(base_run.run_dir), pick="fake-quant"), SINGLE,
                     out=tmp_path / "second", progress=False, log=_quiet)  # fmt: skip
    stored = RunFolder(second.run_dir).load_checkpoint()["float_model"]
    assert all(torch.equal(float_weights[k], stored[k]) for k in float_weights)
    assert second.metrics["float_top1"] == pytest.approx(base_run.metrics["float_top1"])
    assert second.metrics["exported"]["float"]["weights"] == "init"
    with pytest.raises(UserError, match="--init .*another spec"):
        run_qat(_spec(-3.5), data, _options(init=str(base_run.run_dir)), SINGLE, out=tmp_path / "third",
                progress=False, log=_quiet)  # fmt: skip
    assert not (tmp_path / "third").exists()


def test_teacher_with_other_classes_is_refused(tmp_path, base_run):
    teacher = tmp_path / "teacher"
    shutil.copytree(base_run.run_dir, teacher)
    (teacher / "labels.txt").write_text("".join(f"other{i}\n" for i in range(10)))
    with pytest.raises(UserError, match="--teacher .*classes differ"):
        run_qat(_spec(), _data(), _options(teacher=str(teacher)), SINGLE, out=tmp_path / "s",
                progress=False, log=_quiet)  # fmt: skip
    assert not (tmp_path / "s").exists()


def test_decoded_cache_gives_the_same_samples_as_decoding_each_time(tmp_path):
    from PIL import Image

    from mcu_effnet.data.cache import DecodedCache

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(3):
                pixels = rng.integers(0, 256, (40 + 7 * i, 50, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / name / f"{i}.png")
    bundle = open_data(str(tmp_path))
    cached = DecodedCache(bundle.train, 32)
    for augment in (False, True):
        plain = ImageDataset(bundle.train, 32, augment=augment, seed=2)
        fast = ImageDataset(cached, 32, augment=augment, seed=2)
        for i in range(len(plain)):
            assert torch.equal(plain[i][0], fast[i][0]) and plain[i][1] == fast[i][1]
