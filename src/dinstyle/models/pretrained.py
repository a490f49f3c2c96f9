"""What a weights file says about its weights, kept apart from the architecture's arguments (as timm keeps a
pretrained file's ``pretrained_cfg`` apart from a model's constructor arguments).

``model.config`` builds the layers; ``model.pretrained`` (a ``PretrainedInfo``) says whether they hold trained
weights, which file they came from, the photo size whose look stroke size 1 keeps (``reference_size``), and the
file's free-form training notes (step, recipe, teacher, ...)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional


@dataclass(frozen=True)
class PretrainedInfo:
    trained: bool = False
    file: Optional[str] = None
    reference_size: Optional[int] = None  # None: defaults.REFERENCE_SIZE (``defaults.model_reference_size``)
    notes: Mapping[str, Any] = field(default_factory=dict)  # the file's "info" metadata, as training wrote it

    @classmethod
    def from_file(cls, path, info: Mapping[str, Any]) -> "PretrainedInfo":
        """A model file's ``info`` metadata (``reference_size`` is one of its keys)."""
        notes = {k: v for k, v in info.items() if k not in ("reference_size", "file", "trained")}
        ref = info.get("reference_size")
        return cls(trained=True, file=str(path), reference_size=None if ref is None else int(ref), notes=notes)

    def as_dict(self) -> dict[str, Any]:
        """One flat dict, as ``dinstyle info`` prints it and ``save_model(info=...)`` takes it back."""
        extra = {} if self.reference_size is None else {"reference_size": self.reference_size}
        return {**self.notes, **extra, "file": self.file, "trained": self.trained}
