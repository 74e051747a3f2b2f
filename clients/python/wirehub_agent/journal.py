"""The per-command journal: what makes an agent run a command_id at most
once even though the server delivers at least once.

One file per command under STATE_DIR/journal/, written whole (a
temporary file, fsync, rename, fsync of the directory), so that after a
crash each file holds either its old or its new content:

    {"command_id": "c-1", "command": "reboot", "state": "started", ...}
    {"command_id": "c-1", ..., "state": "done", "status": "completed",
     "result": {...}}

"started" is on disk before the handler runs; "done" with the outcome
after it.  A command found "started" when it is delivered again was
interrupted by a crash.  An empty marker file NAME.acked says the server
took the result; it is written without fsync because losing it only
means the result is sent once more.  Files older than `keep` seconds
(longer than any command's TTL) are removed when the journal opens.
"""

import hashlib
import json
import os
import re
import time

KEEP_SECONDS = 31 * 86400       # the API's longest command ttl is 30 days

_PLAIN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}\Z")


def _valid(record):
    """A record as this module writes it."""
    if not isinstance(record, dict) or \
            not isinstance(record.get("command_id"), str):
        return False
    if record.get("state") == "started":
        return True
    return (record.get("state") == "done"
            and record.get("status") in ("completed", "failed"))


class Journal:
    """The journal in state_dir, or in memory when state_dir is None (then
    it only holds for the life of the process)."""

    def __init__(self, state_dir=None, keep=KEEP_SECONDS):
        self._mem = None
        self._dir = None
        if state_dir is None:
            self._mem = {}
            self._acked = set()
            return
        self._dir = os.path.join(state_dir, "journal")
        os.makedirs(self._dir, mode=0o700, exist_ok=True)
        self._prune(keep)

    @property
    def durable(self):
        return self._dir is not None

    # ------------------------------------------------------------ reading

    def get(self, command_id):
        """The command's record, or None when it was never started."""
        if self._mem is not None:
            return self._mem.get(command_id)
        try:
            with open(self._path(command_id), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        try:
            record = json.loads(data.decode("utf-8"))
        except ValueError:
            record = None
        if not _valid(record):
            # only whole files are renamed into place, so this is damage
            # from outside; the command may have run: never run it again
            record = {"command_id": command_id, "state": "started"}
        return record

    def unacked(self):
        """Records of finished commands whose result the server has not
        acknowledged yet (a crash came between the two)."""
        if self._mem is not None:
            return [r for cid, r in self._mem.items()
                    if r.get("state") == "done" and cid not in self._acked]
        out = []
        for name in sorted(os.listdir(self._dir)):
            if not name.endswith(".json"):
                continue
            if os.path.exists(os.path.join(self._dir, name[:-5] + ".acked")):
                continue
            try:
                with open(os.path.join(self._dir, name), "rb") as f:
                    record = json.loads(f.read().decode("utf-8"))
            except (OSError, ValueError):
                continue
            if _valid(record) and record["state"] == "done":
                out.append(record)
        return out

    # ------------------------------------------------------------ writing

    def start(self, command_id, command):
        """On disk before the handler runs."""
        self._put(command_id, {"command_id": command_id, "command": command,
                               "state": "started", "started_at": time.time()})

    def finish(self, command_id, command, outcome):
        """The outcome ({"status": ..., "result"|"error": ...}), on disk
        before it is reported."""
        record = {"command_id": command_id, "command": command,
                  "state": "done", "finished_at": time.time()}
        record.update(outcome)
        self._put(command_id, record)
        return record

    def acked(self, command_id):
        """The server took the result: not to be sent again at start."""
        if self._mem is not None:
            self._acked.add(command_id)
            return
        path = self._path(command_id)[:-5] + ".acked"
        with open(path, "wb"):
            pass

    # ------------------------------------------------------------ files

    def _path(self, command_id):
        if _PLAIN_ID.match(command_id):
            name = command_id
        else:
            # "=" never starts a plain id, so the two kinds cannot collide
            name = "=" + hashlib.sha256(command_id.encode()).hexdigest()
        return os.path.join(self._dir, name + ".json")

    def _put(self, command_id, record):
        if self._mem is not None:
            self._mem[command_id] = record
            return
        path = self._path(command_id)
        data = json.dumps(record, separators=(",", ":")).encode()
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._sync_dir()

    def _sync_dir(self):
        """The rename itself is durable only once the directory is."""
        fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _prune(self, keep):
        """Drop records no server can deliver again, and torn temporaries."""
        horizon = time.time() - keep
        for name in os.listdir(self._dir):
            path = os.path.join(self._dir, name)
            try:
                if name.endswith(".tmp") or os.stat(path).st_mtime < horizon:
                    os.unlink(path)
            except FileNotFoundError:
                pass
