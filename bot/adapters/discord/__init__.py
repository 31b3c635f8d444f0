"""careerbot on Discord (discord.py): `run_discord` serves; `sync_commands` registers commands."""

from bot.adapters.discord.client import run_discord, sync_commands, sync_commands_cli

__all__ = ["run_discord", "sync_commands", "sync_commands_cli"]
