"""What one soak run does, from the environment (make soak passes its
variables through).  Every knob has a default sized for a 2-core box
shared with other work; `make soak` overrides SOAK_SECONDS and
SOAK_CLIENTS."""

import os
from dataclasses import asdict, dataclass, fields


@dataclass
class Settings:
    seconds: float = 1800       # SOAK_SECONDS: the load phase
    clients: int = 2000         # SOAK_CLIENTS: subscribers
    procs: int = 4              # SOAK_PROCS: subscriber processes
    channels: int = 8           # SOAK_CHANNELS
    per_client: int = 2         # SOAK_PER_CLIENT: channels per subscriber
    api_rate: float = 10.0      # SOAK_API_RATE: API publishes/s, in all
    mqtt_rate: float = 10.0     # SOAK_MQTT_RATE: MQTT publishes/s, in all
    cmd_rate: float = 4.0       # SOAK_CMD_RATE: commands queued/s
    agents: int = 20            # SOAK_AGENTS
    drop_mean: float = 60.0     # SOAK_DROP_MEAN: mean s between drops
    agent_drop_mean: float = 120.0  # SOAK_AGENT_DROP_MEAN
    kill_every: float = 180.0   # SOAK_KILL_EVERY: wirehubd kill -9
    reload_every: float = 300.0  # SOAK_RELOAD_EVERY: nginx HUP
    down: float = 1.0           # SOAK_DOWN: s wirehubd stays dead
    warmup: float = 10.0        # SOAK_WARMUP
    settle: float = 10.0        # SOAK_SETTLE: before each RSS/fd sample
    sample_every: float = 30.0  # SOAK_SAMPLE_EVERY: RSS/fd timeline
    catchup: float = 60.0       # SOAK_CATCHUP: end, until all caught up
    seed: int = 1               # SOAK_SEED: drops and choices
    rss_tolerance: float = 0.25  # SOAK_RSS_TOLERANCE: end <= base*(1+t)
    rss_slack_mib: float = 4.0   # SOAK_RSS_SLACK_MIB: ... + this
    fd_slack: int = 2           # SOAK_FD_SLACK: end <= base + this

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get("SOAK_" + f.name.upper())
            if raw not in (None, ""):
                # int("2e3") fails where int(float("2e3")) does not
                values[f.name] = type(f.default)(float(raw))
        s = cls(**values)
        s.check()
        return s

    def check(self):
        if self.per_client > self.channels:
            raise SystemExit("SOAK_PER_CLIENT exceeds SOAK_CHANNELS")
        if self.clients < 1 or self.procs < 1 or self.agents < 1:
            raise SystemExit("SOAK_CLIENTS, SOAK_PROCS and SOAK_AGENTS "
                             "must be positive")
        # each subscriber process stays far below the 20,000 fd cap
        self.procs = max(self.procs, -(-self.clients // 5000))

    def history_length(self):
        """Long enough that no message is ever trimmed: three times what
        one channel receives over the whole run (trimming would make
        `recovered:false` legitimate, which the soak wants to exclude)."""
        total = (self.api_rate + self.mqtt_rate) * (
            self.seconds + self.warmup + 120)
        return max(100000, int(3 * total / self.channels))

    def as_dict(self):
        return asdict(self)
