"""Learning from use: what people asked that careerbot could not answer, and their votes.

Adapters hand a `Recorder` each question (with the reply it got) and each
helpful / not-helpful vote; it stores them in the background, in a SQLite file
or in Redis, with ids hashed and old records purged. `careerbot report` turns
the records into clusters of similar unanswered questions, votes per topic and
questions per day, and `--suggest` into example questions for topic files.
"""

from bot.learning._clusters import cluster
from bot.learning._command import run_report
from bot.learning._recorder import Recorder
from bot.learning._records import QuestionRecord, VoteRecord, keyed_hash
from bot.learning._report import (
    Cluster,
    Report,
    TopicVotes,
    build_report,
    parse_since,
    render_csv,
    render_json,
    render_table,
    stats_reply,
    suggest,
)
from bot.learning._storage import RedisStorage, SQLiteStorage, Storage

__all__ = [
    "Cluster",
    "QuestionRecord",
    "Recorder",
    "RedisStorage",
    "Report",
    "SQLiteStorage",
    "Storage",
    "TopicVotes",
    "VoteRecord",
    "build_report",
    "cluster",
    "keyed_hash",
    "parse_since",
    "render_csv",
    "render_json",
    "render_table",
    "run_report",
    "stats_reply",
    "suggest",
]
