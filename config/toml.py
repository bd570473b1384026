"""Loading a TOML configuration file into its pydantic model, failing fast and clearly: a
missing file, bad TOML or an invalid value stops the process with the file's name and the
reason. The reason names each invalid field and why, never the values given: pydantic's own
message prints a section's whole input when a model validator refuses it, secrets and
tokens included (a SecretStr is masked only once it is one)."""

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
        raise SystemExit(f"{what} {path} is invalid:\n{reasons(exc)}") from exc


def reasons(exc: ValidationError) -> str:
    """Each error's place and reason, as pydantic words them, without the input."""
    return "\n".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top)'}\n  {e['msg']} [type={e['type']}]"
        for e in exc.errors(include_input=False, include_url=False))
