"""careerbot's Slack adapter: slack-bolt wiring (app.py) and Reply -> Block Kit (render.py)."""

from bot.adapters.slack.app import build_app, run_slack
from bot.adapters.slack.render import render

__all__ = ["build_app", "render", "run_slack"]
