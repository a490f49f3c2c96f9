"""The one style-code cache: bounded, least recently used out first, safe to share between threads.

The ``Stylizer`` keeps one (``Stylizer.codes``) for everything it remembers about styles: encoded codes (keyed
by the style's content hash and style size), loaded code files, and the hashes of style files (keyed by path
and modification time). The server uses the Stylizer's, so one bound covers the process."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

CODE_CACHE_SIZE = 64  # entries; a code of the bundled models is ~0.1-1 MB


class CodeCache:
    def __init__(self, size: int = CODE_CACHE_SIZE):
        if size < 1:
            raise ValueError(f"cache size must be at least 1, got {size}")
        self.size = size
        # whether the latest lookup was answered from the cache: the code lookup is the last step of
        # ``Stylizer.encode_style``, so the server (which encodes one style at a time) reports it as hit or miss
        self.last_hit = False
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value under ``key``, made by ``make()`` (outside the lock: encoding is slow) when missing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.last_hit = True
                return self._items[key]
        value = make()
        self.last_hit = False
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
