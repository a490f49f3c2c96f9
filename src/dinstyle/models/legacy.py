"""Model files and model configs from before the one alpha policy (issue 27), read as today's.

Until then an architecture config said what alpha blends (``alpha``: "features", "content" or "code"), and
din-magenta kept a ``neutral_vector`` buffer for "code". Alpha now always blends the style code towards the
content image's own code, which is what "content" meant: such a file (every shipped one) loads as it is, the
key and the buffer dropped. "features" and "code" computed other pictures at alpha < 1 and no change of the
weights gives them back, so they are refused, saying what to do; at alpha 1 all three are the same network,
which is what ``tools/upgrade_alpha.py`` keeps when it rewrites such a file."""
from __future__ import annotations

from ..io.tensorfiles import WeightsError

KEPT_POLICY = "content"
RETIRED_TENSORS = ("neutral_vector",)
REWRITE = "python tools/upgrade_alpha.py {path} -o NEW rewrites it (alpha 1 unchanged, alpha < 1 then changes)"


class RetiredAlphaMode(WeightsError):
    """A model file (or a model config) asks for an alpha policy that is no longer offered."""


def alpha_problem(value) -> str | None:
    """Why a config's ``alpha`` cannot be honoured (None: it is the one policy, or not given)."""
    if value is None or value == KEPT_POLICY:
        return None
    return (f"alpha {value!r} is retired: alpha always blends the style code towards the content's own code "
            f"(what {KEPT_POLICY!r} meant)")


def architecture_arguments(config: dict) -> dict:
    """``config`` without the retired ``alpha`` key (a training config may still say "content")."""
    problem = alpha_problem(config.get("alpha"))
    if problem:
        raise RetiredAlphaMode(problem)
    return {k: v for k, v in config.items() if k != "alpha"}


def upgrade_file(path, meta: dict, tensors: dict) -> tuple[dict, dict]:
    """A model file's metadata and tensors as today's: the ``alpha`` key and the neutral-code buffer gone, or
    a one-line refusal naming the file and the way out."""
    tensors = {k: v for k, v in tensors.items() if k not in RETIRED_TENSORS}
    config = meta.get("config")
    if not isinstance(config, dict) or "alpha" not in config:
        return meta, tensors
    problem = alpha_problem(config["alpha"])
    if problem:
        raise RetiredAlphaMode(f"{path}: {problem}; " + REWRITE.format(path=path))
    return {**meta, "config": architecture_arguments(config)}, tensors
