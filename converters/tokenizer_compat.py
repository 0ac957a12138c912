"""A tokenizer_config.json that every supported transformers version loads (4.51 to 5.x).

transformers 5 saves a fast tokenizer as `"tokenizer_class": "TokenizersBackend"` with
`"backend": "tokenizers"`; transformers 4.x has no such class and refuses the folder. Both
versions load `PreTrainedTokenizerFast` (in 5.x an alias of `TokenizersBackend`), so the
folders we write name that class instead.
"""

from __future__ import annotations

import json
from pathlib import Path

PORTABLE = {"TokenizersBackend": "PreTrainedTokenizerFast"}  # what 5.x writes -> what all load
CONFIG = "tokenizer_config.json"


def make_portable(folder: Path) -> bool:
    """Rewrite the tokenizer config of a folder we wrote so 4.x loads it; True if changed."""
    path = folder / CONFIG
    if not path.is_file():
        return False
    config = json.loads(path.read_text(encoding="utf-8"))
    name = config.get("tokenizer_class")
    if name not in PORTABLE:
        return False
    config["tokenizer_class"] = PORTABLE[name]
    config.pop("backend", None)
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return True
