"""`dinstyle dataset --engine ray` on a local Ray started here (2 CPUs): the same draws and pixels as the
local engine, and a job that finishes although an actor dies mid-job. Skipped without the ``ray`` extra."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'dinstyle[ray]'")
pytest.importorskip("ray.data", reason="the Ray engine needs Ray Data: pip install 'dinstyle[ray]'")

from dinstyle.dataset import DatasetOptions, stylize_dataset  # noqa: E402
from dinstyle.dataset import ray_engine  # noqa: E402
from test_dataset import make_tree, rows_of  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def same_outputs(a, b) -> None:
    ra, rb = rows_of(a), rows_of(b)
    assert ra == rb  # the same draws, statuses and errors, row for row
    for r in ra:
        if r["status"] == "ok":
            x, y = (np.asarray(Image.open(d / r["output"]), dtype=int) for d in (a, b))
            assert x.shape == y.shape and np.abs(x - y).max() <= 1, r["output"]


def test_ray_and_local_give_the_same_dataset(local_ray, tmp_path):
    photos, styles = make_tree(tmp_path, n_plain=4)
    # PNG: the engines may batch photos differently (float sums in another order); JPEG would magnify the
    # resulting 1/255 into a few levels
    opts = dict(styles_per_image=2, alpha=(0.6, 1.0), preserve_color=0.5, seed=9, format="png", progress=False)
    loc = stylize_dataset(str(photos), str(styles), tmp_path / "local", DatasetOptions(**opts, workers=1))
    via = stylize_dataset(str(photos), str(styles), tmp_path / "ray", DatasetOptions(**opts, engine="ray", workers=2))
    assert loc.written == via.written == 18 and via.failed == 2
    same_outputs(tmp_path / "local", tmp_path / "ray")
    again = stylize_dataset(str(photos), str(styles), tmp_path / "ray", DatasetOptions(**opts, engine="ray"))
    assert again.written == 0 and again.done_before == 18


class CrashOnce(ray_engine.RayStylizer):
    """Dies (the whole process, as a kill would) on its first batch, once per job: the marker file says so."""

    marker = ""  # set by the test; travels with the class, pickled by value

    def __call__(self, batch):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return super().__call__(batch)
        os._exit(1)


def test_a_killed_actor_is_replaced_and_the_job_finishes(local_ray, tmp_path, monkeypatch):
    import ray.cloudpickle

    photos, styles = make_tree(tmp_path, n_plain=4)
    marker = tmp_path / "crashed"
    # the actors run in other processes: ship this test's class by value, the marker's path with it
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setattr(ray_engine, "RayStylizer", CrashOnce)
    monkeypatch.setattr(CrashOnce, "marker", str(marker))
    try:
        done = stylize_dataset(str(photos), str(styles), tmp_path / "out",
                               DatasetOptions(engine="ray", workers=2, batch_size=2, format="png", progress=False))
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists(), "no actor died: the test proved nothing"
    assert done.written == 9 and done.failed == 1
    stylize_dataset(str(photos), str(styles), tmp_path / "local", DatasetOptions(workers=1, format="png", progress=False))
    same_outputs(tmp_path / "local", tmp_path / "out")
