"""scripts/refresh_corpus.py: copies the shared corpus into tests/data, says so when it is missing."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts import refresh_corpus


def write_corpus(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in refresh_corpus.FILES:
        (folder / name).write_text(f'{{"cases": [], "v": "{text}-{name}"}}', encoding="utf-8")


def test_refresh_copies_changed_files_and_reports_them(tmp_path: Path) -> None:
    source, target = tmp_path / "shared" / "corpus", tmp_path / "data"
    write_corpus(source, "one")
    assert refresh_corpus.refresh(source, target) == list(refresh_corpus.FILES)
    assert refresh_corpus.refresh(source, target) == []
    (source / "mail-public.json").write_text('{"cases": [1]}', encoding="utf-8")
    assert refresh_corpus.refresh(source, target) == ["mail-public.json"]
    assert (target / "mail-public.json").read_text(encoding="utf-8") == '{"cases": [1]}'


def test_missing_source_says_so_in_russian_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refresh_corpus.main(["--source", str(tmp_path / "nowhere")]) == 1
    assert "Корпус не найден" in capsys.readouterr().out


def test_repository_holds_every_corpus_file() -> None:
    for name in refresh_corpus.FILES:
        assert (refresh_corpus.TARGET / name).is_file(), name
