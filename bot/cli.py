"""careerbot's command line: chat, ask, validate, eval, run, serve."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from bot.logs import configure_logging
from bot.settings import Settings

__all__ = ["main"]

_log = logging.getLogger(__name__)


def _engine(settings: Settings, knowledge: str | None = None):  # noqa: ANN202
    from bot.core import Engine, KnowledgeError

    directory = Path(knowledge) if knowledge else settings.knowledge_dir
    try:
        return Engine(knowledge_dir=directory, settings=settings.match)
    except KnowledgeError as exc:
        print(f"careerbot: the knowledge base cannot be loaded.\n{exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _reply_json(reply) -> dict[str, object]:  # noqa: ANN001
    answered = reply.kind in ("answer", "smalltalk")
    return {
        "topic": reply.topic if answered else None,
        "role": reply.role if answered else None,
        "confidence": reply.confidence,
        "short": reply.short,
        "answer": reply.text,
        "sources": [s.title for s in reply.sources],
        "suggestions": [s.label for s in reply.suggestions],
    }


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.adapters.console import render_text
    from bot.core import Query

    engine = _engine(settings, args.knowledge)
    if not args.jsonl:
        if not args.question:
            print("careerbot ask: give a question, or --jsonl to read JSON lines from stdin",
                  file=sys.stderr)
            return 2
        print(render_text(engine.answer(Query(text=" ".join(args.question)))))
        return 0
    import asyncio  # here: a one-question ask does without it

    return asyncio.run(_ask_lines(engine, settings))


#: a question is at most max_message_chars (2,000) characters: a 1 MiB JSON line holds it
#: with any escaping and metadata, and bounds what one line of input can make us keep
_MAX_LINE_BYTES = 1 << 20


def _input_lines(stream: BinaryIO) -> Iterator[bytes | None]:
    """Each line's bytes without its line end; None for a line over the cap (read past)."""
    while line := stream.readline(_MAX_LINE_BYTES + 1):
        if len(line) > _MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(1 << 16)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        yield line.removesuffix(b"\n").removesuffix(b"\r")


def _json_line(value: dict[str, object]) -> bytes:
    text = json.dumps(value, ensure_ascii=False)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate (from a \\ud800 escape): keep it escaped
        return json.dumps(value).encode("ascii") + b"\n"


async def _ask_lines(engine, settings: Settings,  # noqa: ANN001
                     stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """The batch interface: lines of one session are one conversation, kept in a store.

    JSON Lines in and out, UTF-8 whatever the locale: exactly one output line per input
    line, an {"error": ...} for any line that cannot be answered, and the batch goes on.
    """
    from bot.core import Query
    from bot.store import InProcessStore

    store = InProcessStore(context_ttl=settings.match.context_ttl)
    source = sys.stdin.buffer if stdin is None else stdin
    out = sys.stdout.buffer if stdout is None else stdout
    for n, raw in enumerate(_input_lines(source), 1):
        try:
            if raw is None:
                raise ValueError(f"longer than {_MAX_LINE_BYTES >> 20} MiB")
            if not raw.strip():
                raise ValueError("empty")
            item = json.loads(raw.decode("utf-8"))
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise ValueError('each line must be an object with a "text" string')
            session = item.get("session")
            conversation = "" if session is None else f"jsonl:{session}"
            reply = await engine.converse(Query(text=item["text"], conversation=conversation,
                                                platform="jsonl"), store)
            row: dict[str, object] = _reply_json(reply)
        except UnicodeDecodeError as exc:
            row = {"error": f"line {n}: not UTF-8 (byte {exc.start})"}
        except RecursionError:
            row = {"error": f"line {n}: nested too deeply to read"}
        except (ValueError, TypeError) as exc:
            row = {"error": f"line {n}: {exc}"}
        except Exception as exc:  # a bug answering one line must not lose the rest
            _log.exception("jsonl line %d could not be answered", n)
            row = {"error": f"line {n}: could not be answered ({type(exc).__name__})"}
        out.write(_json_line(row))
        out.flush()
    return 0


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import KnowledgeError, load_knowledge

    directory = args.directory or settings.knowledge_dir
    try:
        knowledge = load_knowledge(directory)
    except KnowledgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    from bot.evaluate import scope_warnings

    print(f"ok: {len(knowledge.topics)} topics, {len(knowledge.sources)} sources, "
          f"{len(knowledge.out_of_scope)} out-of-scope groups, version {knowledge.version}")
    # a warning, not an error: the base serves, but some of a topic's questions are declined
    for warning in scope_warnings(knowledge, settings.match):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from bot.evaluate import cross_validate, evaluate_files

    if not args.files and not args.folds and not args.fit and not args.fit_weights:
        print("give labelled files to score, or --folds N to cross-validate the examples",
              file=sys.stderr)
        return 2
    engine = _engine(settings, args.knowledge)
    if args.fit_weights:
        from bot.evaluate import fit_weights

        _, lines = fit_weights(engine.knowledge, settings.match,
                               tuple(Path(p) for p in args.files), args.folds or 5)
        print("\n".join(lines))
        return 0
    if args.fit:
        from bot.evaluate import fit_decline_line

        _, lines = fit_decline_line(engine.knowledge, settings.match, args.folds or 5,
                                    tuple(Path(p) for p in args.files))
        print("\n".join(lines))
        return 0
    if args.folds:
        if args.folds < 2:
            print("--folds needs at least 2", file=sys.stderr)
            return 2
        result = cross_validate(engine.knowledge, settings.match, args.folds)
    else:
        result = evaluate_files(engine, [Path(p) for p in args.files], perturb=args.perturb)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(result.table())
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.adapters.console import ConsoleChat, terminal_width

    engine = _engine(settings, args.knowledge)
    chat = ConsoleChat(engine, knowledge_dir=Path(args.knowledge) if args.knowledge else None,
                       ansi=sys.stdout.isatty() and not os.environ.get("NO_COLOR"),
                       width=terminal_width())
    return chat.run()


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Whatever the settings allow: Slack and/or Discord, else the console chat."""
    if not (settings.slack_enabled or settings.discord_enabled):
        if not sys.stdin.isatty():
            # a container or a service: no chat to hold, and nothing to serve
            print("careerbot run: no platform is configured (set SLACK_BOT_TOKEN with "
                  "SLACK_APP_TOKEN or SLACK_SIGNING_SECRET, or DISCORD_TOKEN; see "
                  "deploy/SLACK.md, deploy/DISCORD.md), and without a terminal there is no "
                  "console chat to start", file=sys.stderr)
            return 2
        return cmd_chat(args, settings)
    from bot.serve import serve

    return serve(settings, slack=settings.slack_enabled, discord=settings.discord_enabled,
                 knowledge=args.knowledge)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.serve import serve

    return serve(settings, slack=args.platform in ("slack", "all"),
                 discord=args.platform in ("discord", "all"), knowledge=args.knowledge,
                 port=args.port)


def cmd_discord_sync(args: argparse.Namespace, settings: Settings) -> int:
    from bot.adapters.discord.client import sync_commands_cli

    return sync_commands_cli(settings, guild_id=args.guild, clear=args.clear)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from bot.learning import run_report

    return run_report(settings, since=args.since, fmt=args.format, suggestions=args.suggest,
                      knowledge=args.knowledge)


def _port(text: str) -> int:
    """--port, checked like CAREERBOT_PORT: 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 65535, got {text!r}")
    return port


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("careerbot")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


class _VersionAction(argparse.Action):
    """--version, looked up only when asked for (importlib.metadata costs every run)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"careerbot {_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="careerbot", description="Data scientist or ML engineer? Career answers in chat.")
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="show the version and exit")
    # the options every command takes, before the command or after it
    common = argparse.ArgumentParser(add_help=False)
    for where, default in ((parser, None), (common, argparse.SUPPRESS)):
        where.add_argument("--knowledge", default=default,
                           help="knowledge directory (default: the shipped one)")
        where.add_argument("-v", "--verbose", action="store_true", default=default or False,
                           help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, **options: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **options)  # type: ignore[arg-type]

    p = command("chat", help="the local console chat")
    p.set_defaults(func=cmd_chat)
    p = command("run", help="serve the platforms whose tokens are set, else chat")
    p.set_defaults(func=cmd_run)
    p = command("ask", help="one answer, or --jsonl for the batch interface")
    p.add_argument("question", nargs="*", help="the question, in plain words")
    p.add_argument("--jsonl", action="store_true",
                   help='read {"text": ..., "session": ...} lines from stdin, write JSON lines')
    p.set_defaults(func=cmd_ask)
    p = command("validate", help="check a knowledge directory; warn of topic examples "
                "an out-of-scope group declines")
    p.add_argument("directory", nargs="?",
                   help="the knowledge directory (default: the shipped one)")
    p.set_defaults(func=cmd_validate)
    p = command("eval", help="score labelled question sets, or cross-validate the "
                                    "knowledge base's own examples")
    p.add_argument("files", nargs="*", help="labelled JSONL files, e.g. eval/*.jsonl")
    p.add_argument("--folds", type=int, default=0,
                   help="hold out each of N slices of the examples in turn and ask them of "
                        "a matcher built from the rest (no files needed)")
    p.add_argument("--perturb", choices=["typos", "story"],
                   help="ask each single question in 3 less clean copies: two typos, or two "
                        "sentences of unrelated personal story before it")
    p.add_argument("--fit", action="store_true",
                   help="choose the decline line on the held-out examples (--folds, 5 by "
                        "default) and any labelled files given, and print how each line does")
    p.add_argument("--fit-weights", action="store_true",
                   help="fit the scoring weights on the held-out examples and any labelled "
                        "files given (training data only: never the held-out real part); "
                        "takes minutes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
    p = command("serve", help="serve Slack and/or Discord")
    p.add_argument("platform", choices=["slack", "discord", "all"],
                   help="which platform to serve (all: both, in one process)")
    p.add_argument("--port", type=_port, default=None, help="Slack HTTP mode port")
    p.set_defaults(func=cmd_serve)
    p = command("report", help="what people asked that careerbot could not answer")
    p.add_argument("--since", default="7d",
                   help="an age (7d, 24h, 2w) or a date (2024-05-01); default 7d")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--suggest", action="store_true",
                   help="YAML example questions to add to topic files, from the clusters")
    p.set_defaults(func=cmd_report)
    p = command("discord", help="Discord housekeeping")
    dsub = p.add_subparsers(dest="discord_command", required=True)
    d = dsub.add_parser("sync-commands", help="register the slash commands with Discord")
    d.add_argument("--guild", type=int, default=None,
                   help="register to one server (instant) instead of globally")
    d.add_argument("--clear", action="store_true",
                   help="remove the registered commands (global, or the server's with --guild)")
    d.set_defaults(func=cmd_discord_sync)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(dotenv=Path(".env"))
    except ValueError as exc:
        print(f"careerbot: {exc}", file=sys.stderr)
        return 2
    configure_logging(as_json=settings.log_json, verbose=args.verbose,
                      secrets=settings.secrets())
    if args.command is None:
        args.func = cmd_chat
    if getattr(args, "knowledge", None) is None:
        args.knowledge = None
    try:
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `careerbot ask ... | head`: the reader left, and that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
