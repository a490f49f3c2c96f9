"""Files in and out: images (``images``; folders of training images: ``imagefolders``), video files
(``videofiles``), tensor files (``tensorfiles``: safetensors model files and style codes; ``metadata``: their
metadata codec), atomic writes (``atomic``), output-path rules (``outputs``), the built-in style bank
(``builtin_styles``) and the fixed held-out split of image folders (``holdout``).

Nothing here imports a model; ``images`` (torch only inside its tensor conversions), ``outputs``, ``metadata`` and
``atomic`` are torch-free to import (the ``lite`` runtime uses them).
"""
