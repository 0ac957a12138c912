"""Where prompts and gold answers come from: local JSONL / JSON / Parquet files and hub datasets.

Every source yields rows `{"prompt": str, "answer": str, ...other columns}`; the other
columns travel with the row as extras for the rewards. Answers written as worked solutions
become bare gold answers automatically: GSM8K's "... #### 42" gives "42" and MATH's
"... \\boxed{\\frac{1}{2}}" gives "\\frac{1}{2}" (the full text stays in "solution").
A bad row stops loading with a UserError naming `file:line` and what is wrong.

Hub datasets (`hub_rows`) are fetched with huggingface_hub's file downloads, so they land
in (and are reused from) its cache; offline, a clear UserError says what to do. The code
datasets MBPP and HumanEval become Python rows with hidden `tests` (`code_sets`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_grpo.data import code_sets
from mlx_grpo.errors import UserError
from mlx_grpo.rewards.math import last_boxed

SUFFIXES = (".jsonl", ".json", ".parquet")
Record = tuple[str, Any]  # (where, raw row) with where = "file:line" or "file (item N)"


# ---------------------------------------------------------------- gold answers


def gold_from_gsm8k(solution: str) -> str:
    """GSM8K: the text after the last "####", commas and a trailing period removed."""
    if "####" not in solution:
        raise ValueError("no '####' in the solution")
    answer = solution.rsplit("####", 1)[1].strip().split("\n")[0]
    return answer.replace(",", "").replace("$", "").rstrip(".").strip()


def gold_from_math(solution: str) -> str:
    """MATH: the content of the last \\boxed{...} (nested braces kept)."""
    boxed = last_boxed(solution)
    if boxed is None:
        raise ValueError("no \\boxed{...} in the solution")
    return boxed


def gold_answer(text: str) -> str:
    """A gold answer from either a bare answer or a GSM8K/MATH-style worked solution."""
    if "####" in text:
        return gold_from_gsm8k(text)
    if "\\boxed" in text or "\\fbox" in text:
        return gold_from_math(text)
    return text.strip()


# ---------------------------------------------------------------- reading files


def _jsonl_records(path: Path) -> Iterator[Record]:
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            where = f"{path}:{line_no}"
            line = utf8_line(raw, where)
            if not line.strip():
                continue
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"not valid JSON ({exc.msg})", where=where) from None


def utf8_line(raw: bytes, where: str) -> str:
    """One line of a text file as str; bytes that are not UTF-8 are one clear error."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"not UTF-8 text (byte {exc.start + 1} of the line): is this a text file?", where=where
        ) from None


def _json_records(path: Path) -> Iterator[Record]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError("not UTF-8 text: is this a JSON file?", where=str(path)) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON ({exc.msg})", where=f"{path}:{exc.lineno}") from None
    if isinstance(data, dict):  # {"data": [...]} / {"rows": [...]}: the one list inside
        lists = [value for value in data.values() if isinstance(value, list)]
        data = lists[0] if len(lists) == 1 else data
    if not isinstance(data, list):
        raise UserError(
            "expected a JSON list of objects (or JSONL, one object per line)", where=str(path)
        )
    for index, item in enumerate(data):
        yield f"{path} (item {index})", item


def _parquet_records(path: Path) -> Iterator[Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(
            "reading Parquet needs pyarrow: `pip install pyarrow`, or convert the file to JSONL",
            where=str(path),
        ) from None
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise UserError(f"not a readable Parquet file ({exc})", where=str(path)) from None
    for index, item in enumerate(table.to_pylist()):
        yield f"{path} (row {index})", item


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def normalize_row(where: str, row: Any, prompt_field: str, answer_field: str) -> dict[str, Any]:
    """{"prompt", "answer", ...extras} from one raw row, or a UserError naming `where`."""
    if not isinstance(row, dict):
        raise UserError(f"expected a JSON object, got {type(row).__name__}", where=where)
    for field in (prompt_field, answer_field):
        if field not in row:
            keys = ", ".join(map(repr, row)) or "none"
            raise UserError(
                f"missing field {field!r} (this row has: {keys}); set "
                "prompt_field / answer_field to map yours",
                where=where,
            )
    prompt, raw = _as_text(row[prompt_field]).strip(), _as_text(row[answer_field])
    if not prompt:
        raise UserError(f"empty prompt (field {prompt_field!r})", where=where)
    try:
        answer = gold_answer(raw)
    except ValueError as exc:
        raise UserError(f"cannot read the answer: {exc}", where=where) from None
    if not answer:
        raise UserError(f"empty answer (field {answer_field!r})", where=where)
    extras = {k: v for k, v in row.items() if k not in (prompt_field, answer_field)}
    if answer != raw.strip() and "solution" not in extras:
        extras["solution"] = raw
    return {**extras, "prompt": prompt, "answer": answer}


def normalize_rows(
    records: Iterable[Record], prompt_field: str, answer_field: str, source: str
) -> list[dict[str, Any]]:
    rows = [normalize_row(where, row, prompt_field, answer_field) for where, row in records]
    if not rows:
        raise UserError("no rows found", where=source)
    return rows


def read_rows(
    path: Path | str, *, prompt_field: str = "prompt", answer_field: str = "answer"
) -> list[dict[str, Any]]:
    """Rows from a .jsonl, .json or .parquet file, normalized to "prompt" and "answer"
    (a file in MBPP's or HumanEval's format, with the default fields: `code_sets` rows)."""
    path = Path(path)
    records = file_records(path)
    if (prompt_field, answer_field) == ("prompt", "answer"):
        first = next(records, None)
        if first is None:
            raise UserError("no rows found", where=str(path))
        records = itertools.chain([first], records)
        convert = code_sets.converter_for(first[1])
        if convert is not None:
            return [convert(where, raw) for where, raw in records]
    return normalize_rows(records, prompt_field, answer_field, str(path))


def file_records(path: Path) -> Iterator[Record]:
    """The raw rows of a .jsonl, .json or .parquet file, each with where it came from."""
    if path.is_dir():
        raise UserError(
            f"is a folder, not a dataset file; give one {', '.join(SUFFIXES)} file in it",
            where=str(path),
        )
    if not path.is_file():
        raise UserError(f"dataset file not found: {path}")
    readers = {".jsonl": _jsonl_records, ".json": _json_records, ".parquet": _parquet_records}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise UserError(
            f"unsupported dataset file type {path.suffix!r}; use one of {', '.join(SUFFIXES)}",
            where=str(path),
        )
    return reader(path)


# ---------------------------------------------------------------- hub datasets


@dataclass(frozen=True)
class HubPreset:
    prompt_field: str
    answer_field: str
    config: str | None = None
    files: tuple[tuple[str, str], ...] = ()  # (split, file in the repo), so no listing needed
    rows: Callable[[str, Any], dict[str, Any]] | None = None  # (where, raw row) -> row, if not
    # the fields above (code datasets: `code_sets`)


PRESETS = {
    "openai/gsm8k": HubPreset(
        "question",
        "answer",
        config="main",
        files=(
            ("train", "main/train-00000-of-00001.parquet"),
            ("test", "main/test-00000-of-00001.parquet"),
        ),
    ),
    "HuggingFaceH4/MATH-500": HubPreset("problem", "answer", files=(("test", "test.jsonl"),)),
    # all 7,500 MATH train problems in data/ (the default config), one folder per subject beside
    # it; the gold answer is the last \boxed{} of "solution"
    "DigitalLearningGmbH/MATH-lighteval": HubPreset("problem", "solution"),
    # code: Python rows with `tests` for code_tests (config full, or hub_config: sanitized)
    "google-research-datasets/mbpp": HubPreset(
        "text",
        "code",
        config="full",
        files=tuple(
            (split, f"full/{split}-00000-of-00001.parquet")
            for split in ("train", "test", "validation", "prompt")
        ),
        rows=code_sets.mbpp_row,
    ),
    "openai/openai_humaneval": HubPreset(
        "prompt",
        "canonical_solution",
        files=(("test", "openai_humaneval/test-00000-of-00001.parquet"),),
        rows=code_sets.humaneval_row,
    ),
}
DEFAULT_CONFIG_FOLDER = "data"  # where the hub keeps a dataset's default config


def _is_data_file(name: str, split: str, config: str | None) -> bool:
    """Whether a repo file holds `split` (of `config`): train.jsonl, main/train-0000.parquet,
    data/train/0000.parquet, ..."""
    if not name.endswith(SUFFIXES):
        return False
    *folders, filename = name.split("/")
    if config is not None and folders and config not in folders:
        return False
    stem = filename.split(".")[0]
    return split in folders or stem == split or stem.startswith((f"{split}-", f"{split}_"))


def _hub_error(dataset_id: str, exc: Exception) -> UserError:
    name = type(exc).__name__
    if "RepositoryNotFound" in name or "GatedRepo" in name:
        return UserError(f"no accessible dataset {dataset_id!r} on the Hugging Face hub ({name})")
    if "EntryNotFound" in name and "LocalEntryNotFound" not in name:
        return UserError(f"{dataset_id!r} on the Hugging Face hub has no such file ({exc})")
    return UserError(
        f"cannot reach the Hugging Face hub to fetch {dataset_id}; download it and pass a "
        f"local file ({name}: {exc})"
    )


def _hub_exceptions() -> tuple[type[Exception], ...]:
    """What huggingface_hub raises offline or on HTTP trouble.

    Its transport's errors are not OSErrors: huggingface-hub 1.x uses httpx, 2.x uses httpx2.
    """
    import importlib

    from huggingface_hub.errors import EntryNotFoundError

    found: list[type[Exception]] = [OSError, EntryNotFoundError]
    for transport in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(transport).HTTPError)
        except ImportError:
            continue
    return tuple(found)


def _hub_files(dataset_id: str, split: str, config: str | None) -> list[str]:
    import huggingface_hub

    preset = PRESETS.get(dataset_id)
    if preset and preset.files and config in (None, preset.config):
        return [file for name, file in preset.files if name == split]
    names = huggingface_hub.list_repo_files(dataset_id, repo_type="dataset")
    return _config_files(dataset_id, names, split, config)


def _config_files(dataset_id: str, names: list[str], split: str, config: str | None) -> list[str]:
    """The repo files of one split of one config. Without a config: the default config's
    folder (data/) when there is one, else refuse to mix several config folders."""
    wanted = None if config == "default" else config
    found = sorted(name for name in names if _is_data_file(name, split, wanted))
    if wanted is not None:
        return found
    default = [name for name in found if name.split("/")[0] == DEFAULT_CONFIG_FOLDER]
    if default:
        return default
    folders = sorted({name.split("/")[0] for name in found if "/" in name})
    if len(folders) < 2 or any("/" not in name for name in found):
        return found
    raise UserError(
        f"{dataset_id} has several configs ({', '.join(folders)}); choose one with data.hub_config"
    )


def hub_rows(
    dataset_id: str,
    split: str = "train",
    config: str | None = None,
    *,
    prompt_field: str | None = None,
    answer_field: str | None = None,
) -> list[dict[str, Any]]:
    """Rows of a hub dataset split, through huggingface_hub's cached file downloads."""
    preset = PRESETS.get(dataset_id)
    if preset and preset.rows and not (prompt_field or answer_field):
        paths = hub_paths(dataset_id, split, config)
        convert = preset.rows
        rows = [convert(where, raw) for path in paths for where, raw in file_records(path)]
        if not rows:
            raise UserError("no rows found", where=dataset_id)
        return rows
    prompt_field = prompt_field or (preset.prompt_field if preset else "prompt")
    answer_field = answer_field or (preset.answer_field if preset else "answer")
    return [
        row
        for path in hub_paths(dataset_id, split, config)
        for row in read_rows(path, prompt_field=prompt_field, answer_field=answer_field)
    ]


def hub_paths(dataset_id: str, split: str = "train", config: str | None = None) -> list[Path]:
    """The local (cached) data files of a hub dataset split, downloaded if need be."""
    import huggingface_hub

    try:
        files = _hub_files(dataset_id, split, config)
        if not files:
            raise UserError(
                f"found no {split!r} data files (.jsonl/.json/.parquet) in "
                f"{dataset_id} on the Hugging Face hub"
            )
        paths = [
            huggingface_hub.hf_hub_download(dataset_id, name, repo_type="dataset") for name in files
        ]
    except _hub_exceptions() as exc:
        raise _hub_error(dataset_id, exc) from exc
    return [Path(path) for path in paths]
