"""The command line: the batch contract the evaluation uses, validate, ask, chat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import EVAL, ROOT

DATA = ROOT / "tests" / "data"


def careerbot(*args: str, stdin: str = "", cwd: Path | None = None,
              env: dict[str, str] | None = None):
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, cwd=cwd,
                          env=None if env is None else {**os.environ, **env})


def ask_jsonl_bytes(stdin: bytes) -> list[dict]:
    """careerbot ask --jsonl fed raw bytes, with the UTF-8 stdio of the audit."""
    out = subprocess.run([sys.executable, "-m", "bot", "ask", "--jsonl"], input=stdin,
                         capture_output=True, timeout=60,
                         env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    assert b"Traceback" not in out.stderr
    return [json.loads(line) for line in out.stdout.decode("utf-8").splitlines()]


GOOD_BEFORE = json.dumps({"text": "what do data scientists earn?", "session": "s"}).encode()
GOOD_AFTER = json.dumps({"text": "how about for MLEs", "session": "s"}).encode()


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (b"[" * 200_000, "nested too deeply"),  # RecursionError in json.loads
        (b'{"text": "caf\xe9 salary?"}', "not UTF-8 (byte 13)"),
        (b"\xff\xfe\x00", "not UTF-8 (byte 0)"),
        (b"", "empty"),
        (b"x" * (2 << 20), "longer than 1 MiB"),
    ],
    ids=["deep-nesting", "latin-1-in-text", "utf-16-bom", "blank", "over-1-MiB"],
)
def test_jsonl_answers_around_a_line_it_cannot_read(bad: bytes, error: str):
    rows = ask_jsonl_bytes(GOOD_BEFORE + b"\n" + bad + b"\n" + GOOD_AFTER + b"\n")
    assert len(rows) == 3  # one line out per line in
    assert (rows[0]["topic"], rows[0]["role"]) == ("salary", "data_scientist")
    assert set(rows[1]) == {"error"} and rows[1]["error"].startswith("line 2: ")
    assert error in rows[1]["error"]
    # the batch went on, and the session's memory with it
    assert (rows[2]["topic"], rows[2]["role"]) == ("salary", "ml_engineer")


def test_jsonl_keeps_a_lone_surrogate_escaped_and_the_output_valid_utf8():
    text = json.dumps({"text": "\ud800 what do ML engineers do all day? \ud800"})
    rows = ask_jsonl_bytes(text.encode() + b"\r\n" + GOOD_BEFORE)  # CRLF, no final newline
    assert len(rows) == 2
    assert "error" not in rows[0] and rows[1]["topic"] == "salary"


def test_jsonl_batch_contract_with_sessions_and_bad_lines():
    lines = [
        json.dumps({"text": "what do data scientists earn?", "session": "s1"}),
        "this is not json",
        json.dumps({"text": "how about for MLEs", "session": "s1"}),
        json.dumps({"nope": 1}),
        json.dumps({"text": "how about for MLEs"}),
        json.dumps({"text": "what is the capital of Peru?", "session": 7}),
    ]
    out = careerbot("ask", "--jsonl", stdin="\n".join(lines) + "\n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 6
    assert rows[0]["topic"] == "salary" and rows[0]["role"] == "data_scientist"
    assert "error" in rows[1] and "line 2" in rows[1]["error"]
    assert (rows[2]["topic"], rows[2]["role"]) == ("salary", "ml_engineer")
    assert "error" in rows[3]
    assert rows[4]["topic"] != "salary"  # no session, no memory
    assert rows[5]["topic"] is None and rows[5]["role"] is None
    for row in (rows[0], rows[2], rows[5]):
        assert set(row) == {"topic", "role", "confidence", "short", "answer", "sources",
                            "suggestions"}
        assert 0 <= row["confidence"] <= 1
    assert rows[0]["sources"] and rows[0]["short"].startswith("In the US a data scientist")
    assert rows[5]["short"] == ""  # a decline has none


def test_validate_reports_every_problem_and_exits_1(knowledge_copy):
    ok = careerbot("validate", str(knowledge_copy))
    assert ok.returncode == 0 and ok.stdout.startswith("ok")
    (knowledge_copy / "topics" / "salary.yaml").write_text("id: salary\n")
    bad = careerbot("validate", str(knowledge_copy))
    assert bad.returncode == 1
    assert "topics/salary.yaml: answers" in bad.stderr
    assert "topics/salary.yaml: title: is missing" in bad.stderr


INTERVIEWS = ["how do I prepare for a data science interview",
              "what questions come up in an ml engineer interview",
              "tips for passing the technical interview", "how many interview rounds are there",
              "what do interviewers ask data scientists",
              "how to answer behavioural interview questions",
              "should I practise leetcode for interviews",
              "what is a take-home interview assignment like"]
HIRING_ITSELF = ["when should a company hire a data scientist",
                 "should my startup hire an ml engineer first",
                 "which role should we hire for our first ai project",
                 "do we need both roles on the team"]
HIRING_INTERVIEWS = ["how do I prepare for the interview round at a data science job",
                     "what questions come up when interviewing for an ml engineer role",
                     "tips for the technical interview for data scientists",
                     "how do interviewers test ml engineers"]


def _crafted_knowledge(root: Path) -> Path:
    """Two topics and a decline group for job interviews; half of hiring's examples are
    about interviews, as if hiring had been added without editing that group."""
    def write(name: str, data: object) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    def topic(topic_id: str, examples: list[str], follow_up: str) -> dict[str, object]:
        return {"id": topic_id, "title": topic_id.title(), "summary": f"About {topic_id}.",
                "sources": ["guide"], "short": {"both": "In short."},
                "answers": {"both": "The details, from the guide."}, "examples": examples,
                "keywords": [topic_id], "follow_ups": [follow_up]}

    write("sources.yaml", {"guide": {"title": "A guide", "by": "Someone"}})
    write("synonyms.yaml", {"roles": {"data_scientist": ["data scientist", "ds"],
                                      "ml_engineer": ["ml engineer", "mle"]}})
    write("out_of_scope.yaml", {"groups": [{"id": "interviews", "examples": INTERVIEWS,
                                            "reason": "the articles skip job interviews"}]})
    write("topics/salary.yaml", topic("salary", [
        "how much does it pay", "what is the typical salary", "who earns more",
        "which role pays better", "how big is the paycheck", "do they make six figures",
        "average pay in the US", "is the pay good"], "hiring"))
    write("topics/hiring.yaml", topic("hiring", HIRING_ITSELF + HIRING_INTERVIEWS, "salary"))
    return root


def test_validate_warns_of_examples_closer_to_a_decline_group(tmp_path):
    """Each interview example of hiring, held out, goes to the interviews group: a warning
    naming file, example (and its line) and group; the base is still valid (exit 0)."""
    knowledge = _crafted_knowledge(tmp_path / "knowledge")
    out = careerbot("validate", str(knowledge))
    assert out.returncode == 0 and out.stdout.startswith("ok: 2 topics"), out.stderr
    warnings = out.stderr.splitlines()
    assert len(warnings) == len(HIRING_INTERVIEWS), warnings
    source = (knowledge / "topics" / "hiring.yaml").read_text(encoding="utf-8").splitlines()
    for i, (line, example) in enumerate(zip(warnings, HIRING_INTERVIEWS, strict=True)):
        assert line.startswith(f"warning: topics/hiring.yaml: examples[{i + 4}]: {example!r} "
                               "is closer to the out-of-scope group 'interviews'")
        assert "edit that group in out_of_scope.yaml" in line
        at = next(n for n, text in enumerate(source, 1) if text.endswith(example))
        assert line.endswith(f"(line {at})")  # where the example is in its file
    # the group edited (here: gone), nothing is left to warn of
    (knowledge / "out_of_scope.yaml").unlink()
    again = careerbot("validate", str(knowledge))
    assert again.returncode == 0 and again.stderr == ""


def test_ask_prints_an_answer_for_a_person():
    out = careerbot("ask", "typical MLE compensation")
    assert out.returncode == 0
    assert "$140k" in out.stdout and "Sources:" in out.stdout


def test_eval_prints_the_three_figures():
    out = careerbot("eval", *map(str, sorted(EVAL.glob("*.jsonl"))))
    assert out.returncode == 0, out.stderr
    assert "in scope" in out.stdout and "out of scope" in out.stdout
    assert "follow-up turns" in out.stdout


def test_eval_cross_validates_the_examples_or_says_what_it_needs():
    out = careerbot("eval", "--folds", "3", "--json")
    assert out.returncode == 0, out.stderr
    rates = json.loads(out.stdout)
    assert 0.5 < rates["in_scope"] < 1 and 0.5 < rates["out_of_scope"] <= 1
    assert all(m["expected_role"] is None for m in rates["misses"])  # examples carry none
    out = careerbot("eval")
    assert out.returncode == 2 and "--folds" in out.stderr


def test_console_chat_speaks_the_platform_commands():
    script = "/compare salary\n/topics\nwhat do ds earn?\n1\n/reload\n/nonsense\n"
    out = careerbot("chat", stdin=script)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "Data scientist" in text and "ML engineer" in text and "$120k" in text
    assert "What you can ask me" in text
    assert "Reloaded" in text
    assert "Unknown command /nonsense" in text


def test_console_reload_reports_hostile_files_and_keeps_serving(knowledge_copy):
    """The real console: /reload with a FIFO, a symlink loop and a directory among the
    topics answers with the problems, then the old knowledge still answers."""
    import queue
    import threading

    lines: queue.Queue[str | None] = queue.Queue()
    with subprocess.Popen([sys.executable, "-m", "bot", "--knowledge", str(knowledge_copy),
                           "chat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as chat:
        assert chat.stdin is not None and chat.stdout is not None and chat.stderr is not None
        stdout = chat.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            chat.stdin.write("/topics\n")
            chat.stdin.flush()
            while "What you can ask me" not in (line := lines.get(timeout=60) or "(closed)"):
                assert line != "(closed)", "the chat ended before answering /topics"
            topics = knowledge_copy / "topics"
            os.mkfifo(topics / "pipe.yaml")
            (topics / "loop.yaml").symlink_to("loop.yaml")
            (topics / "x.yaml").mkdir()
            chat.stdin.write("/reload\nwhat do data scientists earn?\n")
            chat.stdin.close()
            chat.wait(timeout=60)
        finally:
            if chat.poll() is None:
                chat.kill()
                chat.wait(timeout=60)
        reader.join(timeout=60)
        err = chat.stderr.read()
    out = "".join(iter(lines.get_nowait, None))
    assert chat.returncode == 0, err
    assert "Traceback" not in err
    assert "Reload failed: 3 problem(s)" in out
    for name in ("pipe.yaml", "loop.yaml", "x.yaml"):
        assert f"topics/{name}" in out
    assert "$120k" in out  # still answering from the knowledge it had


def test_version_and_help_for_every_command_and_argument():
    out = careerbot("--version")
    assert out.returncode == 0 and out.stdout.startswith("careerbot ")
    for command in ("chat", "run", "ask", "validate", "eval", "serve", "report"):
        text = careerbot(command, "--help").stdout
        assert "--knowledge" in text, command  # the global options work after it too
        for line in text.split("positional arguments:", 1)[1:]:
            for arg in line.split("options:")[0].strip().splitlines():
                if arg.startswith("  ") and not arg.startswith("    "):  # a positional
                    assert len(arg.split(None, 1)) == 2, (command, arg)  # ... with a help line


def test_global_options_after_the_command():
    out = careerbot("ask", "--knowledge", "knowledge", "what do MLEs earn?", cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("Salary and compensation")


def test_run_with_no_tokens_and_no_terminal_says_what_to_set(tmp_path):
    out = careerbot("run", cwd=tmp_path)  # stdin is a pipe here, as in a container
    assert out.returncode == 2
    assert "SLACK_BOT_TOKEN" in out.stderr and "DISCORD_TOKEN" in out.stderr


def test_eval_fit_chooses_the_decline_line_from_held_out_questions():
    out = careerbot("eval", "--fit", "--folds", "3", str(EVAL / "dev.jsonl"))
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line[:2] == "0."]
    # each line: the examples' and the file's rates (in scope / declined), and their mean
    assert len(rows) == 11 and all(len(r) == 5 and r[3] == "mean" for r in rows)
    fitted = float(out.stdout.rsplit("fitted decline line: ", 1)[1].split()[0])
    best = max(float(r[4].rstrip("%")) for r in rows)
    # the fitted line is the best of the table, or the line in use when none beats it
    assert [r for r in rows if float(r[0]) == fitted and float(r[4].rstrip("%")) == best] \
        or fitted == 0.42


def test_fit_weights_keeps_a_change_only_when_it_scores_better(knowledge):
    from bot.core.matcher import Weights
    from bot.evaluate import fit_weights
    from bot.settings import MatchSettings

    weights, table = fit_weights(knowledge, MatchSettings(), (DATA / "questions.jsonl",),
                                 folds=2, rounds=1, names=("story", "keyword_count"))
    tried = [row for row in table if row.startswith("round")]
    assert 2 <= len(tried) <= 4  # each of two weights scaled down and up, until one is kept
    kept = [row for row in tried if row.endswith("kept")]
    assert (weights == Weights()) == (not kept)

    def mean(row: str) -> float:
        return float(row.split("mean ", 1)[1].split("%")[0])

    assert mean(table[-1]) >= mean(table[0]) and all(mean(r) > mean(table[0]) for r in kept)
