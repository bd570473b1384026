"""Loading a TOML configuration file into its pydantic model, failing fast and clearly: a
missing file, bad TOML or an invalid value stops the process with the file's name and the
reason (pydantic never prints SecretStr values, so the message is safe to show)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_toml(path: Path, model: type[M], what: str) -> M:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SystemExit(f"{what} not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SystemExit(f"{what} {path} is not valid TOML: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SystemExit(f"{what} {path} is invalid:\n{exc}") from exc
