"""Agents built on clients/python/wirehub_agent, run as processes by
t/test_agent.py so that a test can kill one with SIGKILL.  Every event of
an agent is one JSON line on stdout: {"ev": name, "t": monotonic seconds,
"i": agent index, ...the event's info}.

    agent_proc.py one URL TOKEN_FILE --state-dir DIR --runs FILE
        one agent; its handlers append one JSON line per run to FILE:
        work (returns {"echo": payload}), block (never returns), fail
        (raises with payload["message"]).  The token is read from
        TOKEN_FILE, and read again by its token_provider.
        --die-after-journal: SIGKILL itself once the first result is in
        the journal, before it can be sent (a crash at the worst moment).
        --no-token-provider: a refused or expired token ends it.
    agent_proc.py fleet URL TOKENS_FILE
        one agent per token of the JSON list in TOKENS_FILE, in one event
        loop, without journal.
Exit status: 0 stopped, 3 refused for good (AgentStopped).
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

from wirehub_agent import Agent, AgentStopped  # noqa: E402


def emit(name, info, index=0):
    """One event as a JSON line; flushed, the test reads it live."""
    line = {"ev": name, "t": time.monotonic(), "i": index}
    line.update(info)
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def read_token(path):
    with open(path) as f:
        return f.read().strip()


def record_run(path, name, payload):
    """Appends (and syncs) a line: how the test counts handler runs."""
    with open(path, "a") as f:
        f.write(json.dumps({"command": name, "payload": payload}) + "\n")
        f.flush()
        os.fsync(f.fileno())


def one_agent(args):
    """The `one` mode: an agent with the test handlers."""
    def on_event(name, info):
        emit(name, info)
        if args.die_after_journal and name == "finished":
            os.kill(os.getpid(), signal.SIGKILL)

    agent = Agent(args.url, read_token(args.token_file),
                  client_type="desktop", name="Desk 4",
                  state_dir=args.state_dir,
                  token_provider=None if args.no_token_provider
                  else lambda: read_token(args.token_file),
                  backoff_base=args.backoff_base,
                  backoff_max=args.backoff_max, result_retry=1.0,
                  stop_timeout=1.0, on_event=on_event)

    @agent.command("work")
    def work(payload):
        record_run(args.runs, "work", payload)
        return {"echo": payload}

    @agent.command("block")
    def block(payload):
        record_run(args.runs, "block", payload)
        time.sleep(3600)

    @agent.command("fail")
    def fail(payload):
        record_run(args.runs, "fail", payload)
        raise RuntimeError(payload["message"])

    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    return agent.run()


async def fleet(args):
    """The `fleet` mode: many agents in one event loop."""
    with open(args.token_file) as f:
        tokens = json.load(f)
    agents = []
    for i, tok in enumerate(tokens):
        def on_event(name, info, i=i):
            if name in ("connected", "closed"):
                emit(name, info, i)
        agents.append(Agent(args.url, tok, client_type="fleet",
                            name="agent %d" % i,
                            backoff_base=args.backoff_base,
                            backoff_max=args.backoff_max,
                            on_event=on_event))
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: [agent.stop() for agent in agents])
    emit("started", {"agents": len(agents)})
    await asyncio.gather(*[a.run_async() for a in agents])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("one", "fleet"))
    parser.add_argument("url")
    parser.add_argument("token_file")
    parser.add_argument("--state-dir")
    parser.add_argument("--runs")
    parser.add_argument("--die-after-journal", action="store_true")
    parser.add_argument("--no-token-provider", action="store_true")
    parser.add_argument("--backoff-base", type=float, default=0.2)
    parser.add_argument("--backoff-max", type=float, default=2.0)
    args = parser.parse_args()
    try:
        if args.mode == "one":
            one_agent(args)
        else:
            asyncio.run(fleet(args))
    except AgentStopped as exc:
        emit("exit", {"error": type(exc).__name__, "code": exc.code,
                      "reason": exc.reason})
        return 3
    emit("exit", {})
    return 0


if __name__ == "__main__":
    sys.exit(main())
