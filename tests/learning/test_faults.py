"""The learning store when its file goes away, cannot be written or cannot be read.

A deleted data folder is created again (one warning) instead of records going on
into a file no name leads to; `careerbot report` reads a file it may not write;
failures show in /metrics and /healthz. Real SQLite files throughout; the read-only
case runs the report as an unprivileged user when the tests run as root (root may
write any file, so a mode bit alone would prove nothing).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core import Engine, Reply
from bot.learning import QuestionRecord, Recorder, SQLiteStorage, run_report
from bot.metrics import Metrics
from bot.runtime import Runtime
from bot.settings import LearningSettings, Settings
from tests.unprivileged import as_nobody


def _answer(text: str) -> Reply:
    return Reply(title="t", text=text, kind="answer", topic="tools", role="both",
                 confidence=0.2)  # unsure: its text is kept


async def _stored(path: Path) -> list[QuestionRecord]:
    """What a new reader finds at `path` (not what the recorder's connection holds)."""
    reader = SQLiteStorage(path, create=False)
    await reader.open()
    try:
        return await reader.questions(0)
    finally:
        await reader.close()


# ---------------------------------------------------------------------- a deleted folder


async def test_a_deleted_data_folder_is_created_again_and_said_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.learning")
    path = tmp_path / "data" / "learning.sqlite3"
    recorder = Recorder(SQLiteStorage(path))
    try:
        recorder.question(_answer("before"), text="before", platform="slack")
        await recorder.flush()
        key = (tmp_path / "data" / "learning.key").read_text()
        shutil.rmtree(tmp_path / "data")
        for n in range(30):  # in several batches: each is checked, one warning in all
            recorder.question(_answer("after"), text=f"after {n}", platform="slack")
            if n % 10 == 9:
                await recorder.flush()
        assert [q.text for q in await _stored(path)] == [f"after {n}" for n in range(30)]
        # the key in use is written again, so hashes made before and after still match
        assert (tmp_path / "data" / "learning.key").read_text() == key
        assert (tmp_path / "data" / "learning.key").stat().st_mode & 0o777 == 0o600
    finally:
        await recorder.close()
    gone = [r for r in caplog.records if "was deleted or replaced" in r.getMessage()]
    assert len(gone) == 1 and gone[0].levelno == logging.WARNING
    assert str(path) in gone[0].getMessage()


async def test_a_replaced_file_is_written_not_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "learning.sqlite3"
    recorder = Recorder(SQLiteStorage(path))
    try:
        recorder.question(_answer("one"), text="one", platform="slack")
        await recorder.flush()
        path.rename(tmp_path / "old.sqlite3")  # e.g. an admin moving it aside
        recorder.question(_answer("two"), text="two", platform="slack")
        await recorder.flush()
        assert [q.text for q in await _stored(path)] == ["two"]
    finally:
        await recorder.close()


# ---------------------------------------------------------------------- failures counted


async def test_failures_are_counted_and_shown_in_healthz(engine: Engine,
                                                         tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")  # a file where the folder should be
    metrics = Metrics()
    recorder = Recorder(SQLiteStorage(tmp_path / "data" / "learning.sqlite3"),
                        engine=engine, metrics=metrics)
    runtime = Runtime(engine, Settings(), metrics=metrics)
    runtime.learning = recorder.health
    try:
        for text in ("lost one", "lost two"):
            recorder.question(_answer(text), text=text, platform="slack")
        stats = await recorder.stats()  # waits for the writes; the read fails too
        assert "could not read" in stats.text
        ready, body = await runtime.health()
        assert ready  # the learning store never takes the bot out of rotation
        learning = body["learning"]
        assert learning["ok"] is False and learning["unrecorded"] == 2
        assert learning["storage"] == f"SQLite file {tmp_path / 'data' / 'learning.sqlite3'}"
        assert "NotADirectoryError" in learning["error"] or "FileExistsError" in learning[
            "error"]
        shown = metrics.render().decode()
        assert 'careerbot_learning_failures_total{operation="write"} 1.0' in shown
        assert 'careerbot_learning_failures_total{operation="read"} 1.0' in shown
        assert "careerbot_learning_unrecorded_total 2.0" in shown

        (tmp_path / "data").unlink()  # the folder can be made now
        recorder.question(_answer("kept"), text="kept", platform="slack")
        await recorder.flush()
        _, body = await runtime.health()
        assert body["learning"] == {"enabled": True, "ok": True, "unrecorded": 2,
                                    "storage": learning["storage"]}
    finally:
        await recorder.close()
    assert Recorder.off().health() == {"enabled": False}


# ---------------------------------------------------------------------- careerbot report


def _report_as_nobody(db: Path) -> tuple[int, str, str]:
    """run_report on `db` as a user who is not root: a file it can read and not write is
    then honestly read-only. (exit status, stdout, stderr)"""
    def report() -> list[object]:
        out, err = io.StringIO(), io.StringIO()
        settings = Settings(learning=LearningSettings(db_path=db))
        with contextlib.redirect_stderr(err):
            code = run_report(settings, fmt="json", out=out)
        return [code, out.getvalue(), err.getvalue()]

    result = as_nobody(report)
    if isinstance(result, str):
        return -1, "", result
    code, out, err = result
    return code, out, err


@pytest.fixture
def walkable() -> Iterator[Path]:
    """A folder anyone may enter and nobody but root may write (tmp_path is root's)."""
    folder = Path(tempfile.mkdtemp(prefix="careerbot-readonly-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder)


async def _recorded_db(folder: Path, journal: str) -> Path:
    """A learning file as the bot leaves it (WAL), or one switched to a rollback journal."""
    path = folder / "learning.sqlite3"
    storage = SQLiteStorage(path)
    await storage.open()
    await storage.write([QuestionRecord(1e9 + n, "slack", "decline", f"q{n}", None, 0.1,
                                        "low_confidence") for n in range(3)], [], {})
    await storage.close()
    if journal != "wal":
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute(f"PRAGMA journal_mode={journal}")
    path.chmod(0o444)
    return path


@pytest.mark.parametrize("journal", ["wal", "delete"])
async def test_report_reads_a_file_it_may_not_write(walkable: Path, journal: str) -> None:
    path = await _recorded_db(walkable, journal)
    before = path.read_bytes()
    code, out, err = _report_as_nobody(path)
    assert code == 0, err
    assert json.loads(out)["questions"] == 0  # all three are older than the default 7 days
    assert err == ""
    assert path.read_bytes() == before  # no journal mode set, no table made

    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE questions SET at = strftime('%s', 'now')")  # as root: recent now
        db.commit()
    code, out, err = _report_as_nobody(path)
    assert code == 0, err
    assert json.loads(out)["questions"] == 3


async def test_report_on_a_file_without_the_tables_reads_empty(walkable: Path) -> None:
    path = walkable / "learning.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE other (x)")
    path.chmod(0o444)
    before = path.read_bytes()
    code, out, err = _report_as_nobody(path)
    assert code == 0, err
    assert json.loads(out)["questions"] == 0
    assert path.read_bytes() == before


def test_report_on_a_missing_file_says_where_and_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "data" / "learning.sqlite3"
    code = run_report(Settings(learning=LearningSettings(db_path=path)), fmt="json")
    assert code == 0
    captured = capsys.readouterr()
    assert captured.err == (f"careerbot: nothing recorded yet: {path} does not exist (the bot "
                            "creates it with its first record; CAREERBOT_LEARNING_DB says "
                            "where)\n")
    assert json.loads(captured.out)["questions"] == 0
    assert not (tmp_path / "data").exists()
