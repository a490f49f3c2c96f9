"""Files in and out: images (``images``, ``imagefiles``), video files (``videofiles``), tensor files
(``tensorfiles``: safetensors model files and style codes; ``metadata``: their metadata codec), atomic writes
(``atomic``), output-path rules (``outputs``), the built-in style bank (``builtin_styles``) and the fixed
held-out split of image folders (``holdout``).

Nothing here imports a model; ``imagefiles``, ``outputs``, ``metadata`` and ``atomic`` are torch-free (the
``lite`` runtime uses them).
"""
