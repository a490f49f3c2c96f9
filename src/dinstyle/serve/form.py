"""The multipart body of ``POST /api/stylize``, parsed in memory.

Starlette's own form parser spools every file part over 1 MiB into a temporary file in $TMPDIR. Here the
body is read whole first, which is bounded (the Guard stops it past ``--max-upload-mb`` with a 413), then
split by python-multipart's parser into text fields and :class:`Upload` bytes: an upload never touches
the disk, and a request holds about twice its size while it is parsed (the body, and its parts).
"""
from __future__ import annotations

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from .service import MAX_STYLES, Upload, Value

MAX_FILES = MAX_STYLES + 1  # the photo and the styles
MAX_FIELDS = 32  # text fields, repeated ones included
MAX_FIELD_BYTES = 64 * 1024  # a text field: the longest legitimate one is a list of 8 weights


class FormError(ValueError):
    """A malformed or over-full multipart body (the server answers 400)."""


def _text(raw: bytes) -> str:
    try:  # browsers and curl send UTF-8; anything else still reads as something printable
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class _Collector:
    """python-multipart's callbacks, collecting each part in memory."""

    def __init__(self):
        self.fields: dict[str, list[Value]] = {}
        self.files = self.texts = 0
        self.ended = False
        self._header, self._value, self._disposition = bytearray(), bytearray(), b""
        self._name, self._filename, self._data, self._size = "", None, [], 0

    def callbacks(self) -> dict:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
                "on_part_end": self._part_end, "on_end": self._end}

    def _part_begin(self) -> None:
        self._disposition, self._data, self._size = b"", [], 0

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._header).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._header, self._value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise FormError('a part has no name (Content-Disposition: form-data; name="...")')
        self._name = _text(options[b"name"])
        self._filename = _text(options[b"filename"]) if b"filename" in options else None
        if self._filename is not None:
            self.files += 1
            if self.files > MAX_FILES:
                raise FormError(f"too many files (at most {MAX_FILES}: the photo and {MAX_STYLES} styles)")
        else:
            self.texts += 1
            if self.texts > MAX_FIELDS:
                raise FormError(f"too many fields (at most {MAX_FIELDS})")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._data.append(data[start:end])  # pieces joined at the end: a part is usually one piece, kept as is
        self._size += end - start
        if self._filename is None and self._size > MAX_FIELD_BYTES:
            raise FormError(f"field {self._name[:40]!r} is over {MAX_FIELD_BYTES // 1024} KiB")

    def _part_end(self) -> None:
        data, self._data = b"".join(self._data), []
        value = _text(data) if self._filename is None else Upload(self._filename, data)
        self.fields.setdefault(self._name, []).append(value)

    def _end(self) -> None:
        self.ended = True


def parse_multipart(body: bytes, content_type: str) -> dict[str, list[Value]]:
    """A ``multipart/form-data`` body -> field name -> values (text, or :class:`Upload` for a file part)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise FormError("no boundary in the Content-Type header")
    parts = _Collector()
    try:
        parser = MultipartParser(boundary, parts.callbacks())
        parser.write(body)
        parser.finalize()
    except FormError:
        raise
    except ValueError as e:  # python-multipart's parse errors
        raise FormError((str(e).splitlines() or [type(e).__name__])[0][:120]) from None
    if not parts.ended:
        raise FormError("the body ends before the closing boundary")
    return parts.fields
