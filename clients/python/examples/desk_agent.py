#!/usr/bin/python3
"""A desk agent: takes commands for this machine from Wirehub.

    WIREHUB_URL=ws://127.0.0.1:8080/ws/ \\
    WIREHUB_TOKEN_FILE=/etc/desk-agent/token \\
    STATE_DIR=/var/lib/desk-agent  python3 desk_agent.py

The token file holds the client's JWT (from POST /api/clients); whatever
renews it rewrites the file, and the agent reads it again when the
server says the token expired (4401).  Queue a command for it with

    curl -s -H "Authorization: Bearer $SERVICE_TOKEN" \\
         -d '{"command":"disk_usage","payload":{"path":"/"}}' \\
         http://127.0.0.1:8080/api/clients/desk-4/commands
"""

import logging
import os
import platform
import shutil
import sys

from wirehub_agent import Agent, AgentStopped


def read_token():
    with open(os.environ["WIREHUB_TOKEN_FILE"]) as f:
        return f.read().strip()


agent = Agent(os.environ.get("WIREHUB_URL", "ws://127.0.0.1:8080/ws/"),
              read_token(), client_type="desktop", name=platform.node(),
              state_dir=os.environ.get("STATE_DIR", "/var/lib/desk-agent"),
              token_provider=read_token)


@agent.command("hello")
def hello(payload):
    """Who is here: the result is the command's result in the API."""
    return {"host": platform.node(), "python": platform.python_version()}


@agent.command("disk_usage")
def disk_usage(payload):
    """Raising (here: no such path) fails the command with the text."""
    usage = shutil.disk_usage(payload.get("path", "/"))
    return {"total": usage.total, "free": usage.free}


@agent.command("notify")
async def notify(payload):
    """A coroutine handler runs in the agent's event loop."""
    logging.info("message from the operator: %s", payload["text"])
    return {"shown": True}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        agent.run()
    except AgentStopped as exc:
        # 4403: this client was deleted; a restart would not help
        logging.error("stopped for good: %s", exc)
        sys.exit(2)
