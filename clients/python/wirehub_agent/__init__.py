"""wirehub_agent: what a desktop agent or a device runs to take commands
from a Wirehub server.

    from wirehub_agent import Agent

    agent = Agent("ws://host/ws/", token, client_type="desktop",
                  name="Desk 4", state_dir="/var/lib/my-agent")

    @agent.command("reboot")
    def reboot(payload):
        return {"ok": True}

    agent.run()

See docs/agent.md in the Wirehub repository.
"""

from .agent import Agent, AgentStopped, AuthenticationFailed, Revoked
from .backoff import Backoff, retry_after_of
from .journal import Journal

__version__ = "0.1.0"

__all__ = ["Agent", "AgentStopped", "AuthenticationFailed", "Revoked",
           "Backoff", "Journal", "retry_after_of", "__version__"]
