"""The README documents every setting; a new setting without documentation fails here."""

from pathlib import Path

from config.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme():
    missing = [n for n in Settings.model_fields if f"`KARTABL_{n.upper()}`" not in README]
    assert missing == []


def test_readme_shows_the_two_commands():
    assert "make run" in README and "make test" in README
