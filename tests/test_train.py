"""`dinstyle train` in-process: config handling, learning, guards, time budget, --init, bad data."""
import json
import sys

import numpy as np
import pytest
import torch

from dinstyle.cli import main
from dinstyle.errors import DinstyleError, UsageError
from dinstyle.models import create_model, load_model_file
from dinstyle.train import TrainConfig, read_toml, resolve, to_toml, train
from dinstyle.train.checkpoint import load_checkpoint, read_log
from dinstyle.train.config import resume_overrides, to_dict
from dinstyle.train.losses import LossWeights, StyleTransferLoss
from dinstyle.train.synthetic_data import make_image_folder, make_problem_images, synthetic_image

TINY_MODEL = {"style_encoder": "random-vgg19", "widths": [8, 16, 32], "res_blocks": 1, "din_groups": [4, 4, 8],
              "style_hidden": 16}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_image_folder(root / "content", 8, seed=1, min_side=40, max_side=64)
    make_image_folder(root / "style", 6, seed=2, min_side=40, max_side=64)
    return root


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Two threads on two busy cores are many times slower than one for these tiny tensors.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(data, run, **overrides) -> TrainConfig:
    base = dict(content=str(data / "content"), style=str(data / "style"), run=str(run), arch="din-mobilenet-vgg",
                model=TINY_MODEL, loss_net="random-vgg19", size=32, batch_size=2, steps=6, log_every=1,
                checkpoint_every=3, sample_every=3, workers=0, progress=False, sample_count=2)
    return resolve({**base, **overrides})


# ---------------------------------------------------------------------------------------------- config
def test_config_layers_shortcuts_and_toml_round_trip(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('steps = 5\nbatch-size = 3\nloss_net = "random-vgg19"\nlr = 1e-3\n[model]\nres_blocks = 1\n')
    cfg = resolve(read_toml(f), {"batch_size": 4, "style_encoder": "random-vgg19", "style_loss_net": "vgg19"})
    assert (cfg.steps, cfg.batch_size, cfg.lr, cfg.size) == (5, 4, 1e-3, 256)  # default < file < flags
    assert (cfg.content_loss_net, cfg.style_loss_net) == ("random-vgg19", "vgg19")
    assert cfg.model == {"res_blocks": 1, "style_encoder": "random-vgg19"}
    (tmp_path / "r.toml").write_text(to_toml(cfg))
    assert resolve(read_toml(tmp_path / "r.toml")) == cfg
    (tmp_path / "bad.toml").write_text("stepz = 3\n")
    with pytest.raises(UsageError, match="unknown setting 'stepz'"):
        read_toml(tmp_path / "bad.toml")
    with pytest.raises(UsageError, match="expected int"):
        resolve({"steps": "many"})
    with pytest.raises(UsageError, match="precision"):
        resolve({"precision": "fp8"})
    with pytest.raises(DinstyleError, match="not a valid TOML"):
        (tmp_path / "broken.toml").write_text("steps = = 3")
        read_toml(tmp_path / "broken.toml")


def test_resume_may_extend_but_not_change_the_computation():
    saved = resolve({"steps": 10, "batch_size": 8})
    assert resume_overrides(saved, {"steps": 20, "workers": 0}).steps == 20
    with pytest.raises(UsageError, match="cannot change batch_size"):
        resume_overrides(saved, {"batch_size": 4})


# ---------------------------------------------------------------------------------------------- training
def _fixed_batch_loss(model) -> float:
    rng = np.random.default_rng(123)  # held-out pictures of the training kind
    content, style = (torch.from_numpy(np.stack([synthetic_image(rng, 32, 32) for _ in range(4)])).permute(0, 3, 1, 2)
                      .float() / 255 for _ in range(2))
    loss = StyleTransferLoss.from_names("random-vgg19", "random-vgg19", 0, LossWeights())
    with torch.no_grad():
        code = model.encode_style(style)
        return loss(model.stylize(content, code), content, style, model.stylize(content, code, 0.0))["loss"].item()


def test_a_few_dozen_steps_lower_the_loss_and_the_model_is_usable(data, tmp_path, capsys):
    cfg = tiny(data, tmp_path / "run", steps=30, batch_size=2, lr=1e-3, log_every=1, checkpoint_every=15,
               sample_every=15)
    torch.manual_seed(cfg.seed)
    before = _fixed_batch_loss(create_model("din-mobilenet-vgg", **TINY_MODEL))
    result = train(cfg)
    assert result.reason == "done" and result.exit_code == 0 and result.step == 30
    run = tmp_path / "run"
    log = read_log(run / "log.jsonl")
    assert [e["step"] for e in log] == list(range(1, 31))
    assert all(k in log[0] for k in ("loss", "content", "style", "identity", "lr", "images_per_s", "skipped_files"))
    first, last = sum(e["loss"] for e in log[:8]) / 8, sum(e["loss"] for e in log[-8:]) / 8
    model = load_model_file(result.model_path)
    after = _fixed_batch_loss(model)
    print(f"train loss {first:.2f} -> {last:.2f}; fixed batch {before:.2f} -> {after:.2f}", file=sys.stderr)
    assert last < first and after < 0.9 * before
    for name in ("config.toml", "loss.png", "checkpoint.pt", "samples/step-00000015.png", "samples/step-00000030.png"):
        assert (run / name).is_file(), name
    assert load_checkpoint(run)["step"] == 30 and model.info["step"] == 30
    assert len(list((run / "checkpoints").glob("*.safetensors"))) == 2
    # the CLI tools accept the file
    capsys.readouterr()
    assert main(["profile", "--model", str(result.model_path), "--sizes", "64", "--json"]) == 0
    assert "din-mobilenet-vgg" in capsys.readouterr().out


def test_non_finite_steps_are_skipped_then_the_run_stops(data, tmp_path, monkeypatch):
    real = StyleTransferLoss.forward

    def poisoned(self, *a, **k):
        terms = real(self, *a, **k)
        terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(StyleTransferLoss, "forward", poisoned)
    with pytest.raises(DinstyleError, match="3 non-finite steps in a row"):
        train(tiny(data, tmp_path / "run", max_bad_steps=3, checkpoint_every=0))
    log = read_log(tmp_path / "run" / "log.jsonl")
    assert [e["step"] for e in log if e.get("update_skipped")] == [1, 2, 3]
    assert log[-1]["loss"] is None and log[-1]["bad_steps"] == 3


def test_time_budget_stops_with_a_checkpoint_and_resume_finishes(data, tmp_path):
    run = tmp_path / "run"
    first = train(tiny(data, run, steps=5, max_minutes=1e-9))
    assert (first.reason, first.step, first.exit_code) == ("time budget", 1, 0)
    assert load_checkpoint(run)["step"] == 1
    with pytest.raises(DinstyleError, match="already holds a run"):
        train(tiny(data, run, steps=5))
    saved = resolve(read_toml(run / "config.toml"))
    second = train(resume_overrides(saved, {"max_minutes": 0.0}), resume=True)
    assert (second.reason, second.step) == ("done", 5)
    assert [e["step"] for e in read_log(run / "log.jsonl")] == [1, 2, 3, 4, 5]


def test_init_from_a_model_file_takes_its_arch_and_config(data, tmp_path):
    first = train(tiny(data, tmp_path / "a", steps=2))
    cfg = resolve({**json.loads(json.dumps(to_dict(tiny(data, tmp_path / "b")))), "arch": "", "model": {},
                   "init": str(first.model_path), "steps": 1})
    second = train(cfg)
    saved = read_toml(tmp_path / "b" / "config.toml")
    assert saved["arch"] == "din-mobilenet-vgg" and saved["model"]["widths"] == [8, 16, 32]
    assert second.step == 1
    with pytest.raises(UsageError, match="is a din-mobilenet-vgg model, not adain"):
        train(resolve({**to_dict(cfg), "arch": "adain", "run": str(tmp_path / "c")}))


def test_freeze_keeps_the_named_parameters_and_trains_the_rest(data, tmp_path):
    first = train(tiny(data, tmp_path / "a", steps=1))
    before = load_model_file(first.model_path).state_dict()
    cfg = tiny(data, tmp_path / "b", steps=3, init=str(first.model_path), arch="", model={}, lr=1e-2,
               freeze=("encoder", "style_encoder.weight_nets"))
    after = load_model_file(train(cfg).model_path).state_dict()
    frozen = [k for k in before if k.startswith(("encoder.", "style_encoder.weight_nets"))]
    trained = [k for k in before if k.startswith(("up2", "out", "style_encoder.bias_nets"))]
    assert frozen and trained
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in trained)
    with pytest.raises(UsageError, match="--freeze nope: no parameter"):
        train(tiny(data, tmp_path / "c", freeze=("nope",)))


def test_training_on_a_folder_of_problem_files_still_runs(data, tmp_path):
    bad = tmp_path / "bad"
    make_problem_images(bad, 32)
    result = train(tiny(data, tmp_path / "run", content=str(bad), steps=8, max_pixels=32 * 32 * 4, checkpoint_every=0))
    assert result.reason == "done" and result.step == 8
    log = read_log(tmp_path / "run" / "log.jsonl")
    listed = (tmp_path / "run" / "skipped_files.txt").read_text()
    assert log[-1]["skipped_files"] == len(listed.splitlines()) >= 1
    assert all(line.split("\t")[0] in ("unreadable", "truncated", "huge") for line in listed.splitlines())


def test_cli_train_errors_are_one_line(data, tmp_path, capsys):
    assert main(["train", "--content", str(tmp_path / "nope"), "--style", str(data / "style"),
                 "--run", str(tmp_path / "r"), "--workers", "0"]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert main(["train", "--resume", "--run", str(tmp_path / "r2")]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_shipped_configs_resolve_with_the_meaning_they_were_written_with():
    """Every committed recipe loads with one resolve(); a teacher recipe's unset settings take the teacher
    recipe's defaults (the bundled models were trained with them), the paper's keep the paper's."""
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.toml"))
    assert configs
    for path in configs:
        cfg = resolve(read_toml(path))
        assert cfg.arch, path
        if cfg.teacher:
            assert cfg.lr_schedule == "cosine" and cfg.max_pixels == 50_000_000, path
            assert cfg.model.get("style_size") == 256, path  # top-level style_size = 256 sets the model's
            assert "content_loss_net" not in to_toml(cfg) and "feature_weight" in to_toml(cfg), path
        else:
            assert cfg.lr_schedule == "inverse" and cfg.content_loss_net and cfg.style_loss_net, path
            assert "feature_weight" not in to_toml(cfg), path
        assert resolve(read_toml_text(to_toml(cfg))) == cfg, path  # config.toml round trip
    stage2 = resolve(read_toml(Path(__file__).parents[1] / "configs" / "din-mobilenet-distill-stage2.toml"))
    assert (stage2.teacher, stage2.teacher_model, stage2.distill_weight, stage2.pixel_scale) == ("model", "din-magenta", 1.0, 1)
    assert (stage2.warmup, stage2.lr_final, stage2.crop_scale, stage2.precision) == (20, 1e-5, (0.67, 1.3), "auto")


def read_toml_text(text: str) -> dict:
    import tomllib

    from dinstyle.train.config import normalise

    return normalise(tomllib.loads(text), "text")


def test_a_setting_the_objective_does_not_use_is_refused_and_retired_keys_are_read():
    with pytest.raises(UsageError, match=r"feature_weight \(--feature-weight\): not used by the paper's losses"):
        resolve({"feature_weight": 2.0})
    with pytest.raises(UsageError, match=r"content_loss_net .*loss_net \(--loss-net\).*: not used by teacher-guided training"):
        resolve({"teacher": "magenta", "loss_net": "vgg19"})
    assert resolve({"teacher": "magenta", "bf16": True}).precision == "bf16"
    assert resolve({"teacher": "magenta", "bf16": False, "channels_last": True}).precision == "auto"
    with pytest.raises(UsageError, match="'channels_last' = False is retired"):
        resolve({"teacher": "magenta", "channels_last": False})
    with pytest.raises(UsageError, match="cannot change teacher"):
        resume_overrides(resolve({"steps": 10}), {"teacher": "magenta"})


def test_one_schedule_inverse_or_cosine_after_a_warm_up():
    from dinstyle.train.learner import lr_at

    paper = resolve({"lr": 1e-4, "lr_decay": 1e-2})
    assert lr_at(paper, 0) == pytest.approx(1e-4) and lr_at(paper, 100) == pytest.approx(1e-4 / 2)
    cfg = resolve({"teacher": "magenta", "lr": 1e-3, "lr_final": 1e-5, "warmup": 10, "steps": 110})
    assert lr_at(cfg, 0) == pytest.approx(1e-4) and lr_at(cfg, 9) == pytest.approx(1e-3)
    assert lr_at(cfg, 10) == pytest.approx(1e-3) and lr_at(cfg, 110) == pytest.approx(1e-5)
    assert lr_at(cfg, 60) == pytest.approx((1e-3 + 1e-5) / 2)


@pytest.mark.parametrize("old", [{"format_version": 1, "step": 3, "sample_position": 6,
                                  "model_file": "checkpoints/model-00000003.safetensors"},
                                 {"version": 1, "step": 3, "model_file": "model.safetensors"}])
def test_checkpoints_of_the_older_trainers_are_refused_in_one_line(data, tmp_path, capsys, old):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(to_toml(tiny(data, run)))
    torch.save(old, run / "checkpoint.pt")
    assert main(["train", "--resume", "--run", str(run)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "older dinstyle" in err, err
    assert f"--init {run / old['model_file']}" in err
