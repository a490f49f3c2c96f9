"""The tags and limits of dinstyle's own files, in one torch-free place (the ``lite`` runtime reads them too)."""

MODEL_FORMAT = "dinstyle-model"  # the "format" metadata of a model file (``models.registry.save_model``)
MODEL_FORMAT_VERSION = "1"
STYLE_CODE_FORMAT = "dinstyle-style-code"  # the "format" metadata of a style code (``StyleCode.save``)
# Model files and style codes are stored and run in float16 (GPUs, exported graphs): a value beyond its range
# becomes inf there, and on the CPU it still turns the picture black. No trained model comes near it.
FLOAT16_MAX = 65504.0
