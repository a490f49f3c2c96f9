"""Running a model on one image: the runner (``runner.run_model``: whole or tiled, out-of-memory fallback),
tiling (``tiling``), user controls (``controls``: colour, masks, stroke size) and device choice (``devices``)."""
