"""careerbot: data scientist or ML engineer? Answers for Slack, Discord and a console."""

__version__ = "0.1.0"
