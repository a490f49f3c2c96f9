"""Project-wide defaults, in one torch-free place (the CLI reads them before importing torch)."""

DEFAULT_MODEL = "din-magenta"  # the architecture whose trained weights ship in the package (also: din-fast)
DEFAULT_STYLE_SIZE = 512  # style long side for models that do not store their own (trained ones do)
