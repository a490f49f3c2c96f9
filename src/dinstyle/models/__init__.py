from .base import StyleTransferNet
from .registry import (ARCHS, DEFAULT_MODEL, create_model, load_model, load_model_file, model_id, save_model,
                       weights_fingerprint)

__all__ = ["ARCHS", "DEFAULT_MODEL", "StyleTransferNet", "create_model", "load_model", "load_model_file",
           "model_id", "save_model", "weights_fingerprint"]
