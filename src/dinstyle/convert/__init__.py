"""Converters and experiment tools that make model files from other models (used by ``tools/`` and tests,
never by stylizing): Magenta's weights into din-magenta, and din-magenta widened to larger DIN kernels."""
