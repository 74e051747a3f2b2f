"""The agent: one WebSocket connection to a Wirehub server at a time, kept
up across failures, and the commands that come over it run through the
journal (journal.py) so that a command_id runs at most once.

What the server does and says is in docs/protocol.md; how an agent
behaves, in docs/agent.md.
"""

import asyncio
import inspect
import itertools
import json
import logging
import re
import threading
import time
from urllib.parse import urlsplit

from . import _ws
from .backoff import Backoff, retry_after_of
from .journal import Journal

log = logging.getLogger("wirehub_agent")

# Wirehub's close codes (docs/protocol.md, "Close codes")
CLOSE_EXPIRED = 4401
CLOSE_REVOKED = 4403
CLOSE_REPLACED = 4408
CLOSE_KICKED = 4409

DEFAULT_RETRY_AFTER = 30        # a 4409 whose reason names no wait
STABLE_AFTER = 10.0             # s up before the backoff starts over
ERROR_MAX = 4096                # characters of an exception's text

# an error answer to command_result after which sending it again can help
RETRYABLE = ("unavailable", "internal", "rate_limited")

_CLIENT_TYPE = re.compile(r"[A-Za-z0-9_-]+\Z")


class AgentStopped(Exception):
    """run() ended for good: the server will not take this agent back
    as it is.  code is the WebSocket close code or HTTP status."""

    def __init__(self, code, reason):
        super().__init__("%s (%s)" % (reason, code))
        self.code = code
        self.reason = reason


class Revoked(AgentStopped):
    """4403: the client was deleted; its tokens are refused."""


class AuthenticationFailed(AgentStopped):
    """The token was refused (HTTP 401) or expired (4401) and there is no
    token_provider to get another."""


class Agent:
    """A Wirehub agent.  Register handlers with @agent.command("type"),
    then agent.run() (blocks) or await agent.run_async().

    url             the wirehub_websocket location, ws:// or wss://
    token           the client's JWT (sent as Authorization: Bearer)
    client_type     sent in `register` (A-Z a-z 0-9 _ -)
    name            sent in `register` as client_name (at most 128 bytes)
    state_dir       where the journal lives; None keeps it in memory, so a
                    command may run again after a restart
    token_provider  called (plain or async) for a new token after 4401 or
                    an HTTP 401; without it those stop the agent
    backoff_base, backoff_max   the reconnect window: full jitter over
                    [0, min(max, base * 2**attempt)]
    result_retry    seconds before an unacknowledged result goes again
    ping_interval   WebSocket pings to the server (and the time to answer)
    on_event        called as on_event(name, info) on state changes (see
                    docs/agent.md); for logs and metrics, must not block
    """

    def __init__(self, url, token, client_type="agent", name=None,
                 state_dir=None, token_provider=None, *, backoff_base=1.0,
                 backoff_max=60.0, result_retry=5.0, ping_interval=20.0,
                 open_timeout=10.0, stop_timeout=30.0, on_event=None):
        if urlsplit(url).scheme not in ("ws", "wss"):
            raise ValueError("url must be ws:// or wss://")
        if not _CLIENT_TYPE.match(client_type):
            raise ValueError("client_type must be A-Z a-z 0-9 _ -")
        if name is not None and len(name.encode()) > 128:
            raise ValueError("name must be at most 128 bytes")
        self.url = url
        self.token = token
        self.client_type = client_type
        self.name = name
        self.token_provider = token_provider
        self.result_retry = result_retry
        self.ping_interval = ping_interval
        self.open_timeout = open_timeout
        self.stop_timeout = stop_timeout
        self.on_event = on_event
        self.journal = Journal(state_dir)
        self._backoff = Backoff(backoff_base, backoff_max)
        self._handlers = {}
        self._pending = {}          # command_id -> _Result not yet acked
        self._refs = {}             # ref of a command_result -> command_id
        self._ref_seq = itertools.count(1)
        self._active = set()        # command ids queued or running here
        self._lanes = {}            # lane -> (asyncio.Queue, Task)
        self._ws = None
        self._loop = None
        self._stop = None
        self._stopping = False

    # ------------------------------------------------------------ public

    def command(self, command_type):
        """Decorator: fn(payload) handles commands of this type.  Its
        return value (JSON) completes the command with it as result; an
        exception fails it with the exception's text as error.  fn may be
        a coroutine function; a plain one runs in a thread."""
        def register(fn):
            self._handlers[command_type] = fn
            return fn
        return register

    def run(self):
        """Run until stop() (returns None) or until the server refuses the
        agent for good (raises AgentStopped)."""
        return asyncio.run(self.run_async())

    async def run_async(self):
        """run() inside a running event loop."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stopping:
            return None
        self._load_unacked()
        try:
            await self._connect_loop()
        finally:
            self._stop.set()
            await self._drain_lanes()
            self._emit("stopped")
            self._loop = None
        return None

    def stop(self):
        """Ask run() to end: the connection closes with 1000, the running
        handler may finish (stop_timeout), queued commands are left to the
        server's redelivery.  Safe from any thread."""
        self._stopping = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._request_stop)

    # ------------------------------------------------------ connections

    def _request_stop(self):
        self._stop.set()
        if self._ws is not None:
            asyncio.ensure_future(self._ws.close(1000, "agent stopping"))

    async def _connect_loop(self):
        while not self._stop.is_set():
            delay = await self._attempt()
            if delay is None or self._stop.is_set():
                return
            self._emit("reconnecting", delay=delay)
            await self._sleep(delay)

    async def _sleep(self, seconds):
        """Sleep, or less if stop() comes."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _attempt(self):
        """One connection, from the handshake to its close; the delay
        before the next, or None to end.  Raises AgentStopped."""
        try:
            ws = await _ws.connect(self.url, self.token, self.open_timeout,
                                   self.ping_interval)
        except _ws.HandshakeRefused as exc:
            log.info("wirehub agent: %s", exc)
            self._emit("refused", status=exc.status)
            return await self._after_refusal(exc.status)
        except (OSError, asyncio.TimeoutError,
                _ws.WebSocketException) as exc:
            log.info("wirehub agent: cannot connect: %s", exc)
            self._emit("unreachable", error=str(exc))
            return self._backoff.next()
        up = time.monotonic()
        code, reason = await self._serve(ws)
        if self._stop.is_set():
            return None
        if time.monotonic() - up >= STABLE_AFTER and code != CLOSE_REPLACED:
            self._backoff.reset()
        return await self._after_close(code, reason)

    async def _after_refusal(self, status):
        if status == 401:
            if self.token_provider is None:
                raise AuthenticationFailed(401, "the server refused the "
                                           "token and there is no "
                                           "token_provider")
            await self._renew_token()
        return self._backoff.next()

    async def _after_close(self, code, reason):
        """What a close code asks for: the wait before reconnecting."""
        if code == CLOSE_REVOKED:
            raise Revoked(code, "the client was deleted: " + (reason or ""))
        if code == CLOSE_EXPIRED:
            if self.token_provider is None:
                raise AuthenticationFailed(code, "the token expired and "
                                           "there is no token_provider")
            await self._renew_token()
            return self._backoff.next()
        if code == CLOSE_KICKED:
            # an operator's wait, plus a little jitter so that a fleet
            # disconnected at once does not come back at once
            wait = retry_after_of(reason, DEFAULT_RETRY_AFTER)
            return wait + self._backoff.jitter()
        # 4408 (replaced), 1001 (going away), 1006, 1011, 1013 ...
        return self._backoff.next()

    async def _renew_token(self):
        try:
            token = self.token_provider()
            if inspect.isawaitable(token):
                token = await token
        except Exception as exc:
            # keep the old token; the next attempt asks again
            log.warning("wirehub agent: token_provider failed: %s", exc)
            return
        if isinstance(token, str) and token:
            self.token = token
            self._emit("token_renewed")

    async def _serve(self, ws):
        """Reads the connection until it closes: (close code, reason)."""
        self._ws = ws
        retry = None
        try:
            if self._stop.is_set():
                await ws.close(1000, "agent stopping")
            first = json.loads(await asyncio.wait_for(ws.recv(),
                                                      self.open_timeout))
            if first.get("type") != "connection_status":
                raise ValueError("the first message is not "
                                 "connection_status")
            self._emit("connected", session=first.get("data", {})
                       .get("session"), attempt=self._backoff.attempt)
            await self._send({"type": "register",
                              "client_type": self.client_type,
                              "client_name": self.name or ""})
            for command_id in list(self._pending):
                await self._send_result(command_id)
            retry = asyncio.ensure_future(self._retry_results())
            async for text in ws:
                await self._dispatch(text)
        except _ws.ConnectionClosed:
            pass
        except (asyncio.TimeoutError, ValueError, AttributeError) as exc:
            # no connection_status in time, or not one
            log.info("wirehub agent: bad start of session: %r", exc)
            await ws.close(1002, "expected connection_status")
        finally:
            self._ws = None
            if retry is not None:
                retry.cancel()
        code, reason = ws.close_code, ws.close_reason
        log.info("wirehub agent: connection closed: %s %s", code, reason)
        self._emit("closed", code=code, reason=reason)
        return code, reason

    async def _send(self, message):
        """Sends on the current connection; False when there is none."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(json.dumps(message, separators=(",", ":")))
        except _ws.ConnectionClosed:
            return False
        return True

    # ------------------------------------------------------- dispatching

    async def _dispatch(self, text):
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "device_command":
            await self._on_command(message)
        elif kind == "command_result_accepted":
            self._on_accepted(message.get("command_id"))
        elif kind == "error" and message.get("ref") in self._refs:
            self._on_result_error(message)

    async def _on_command(self, message):
        """A delivery: run it, or tell again what it came to."""
        command_id = message.get("command_id")
        if not isinstance(command_id, str) or not command_id:
            return
        if command_id in self._active:
            return      # a redelivery of what is queued or running here
        record = self.journal.get(command_id)
        if record is not None and record.get("state") == "done":
            self._emit("replayed", command_id=command_id,
                       status=record.get("status"),
                       attempt=message.get("attempt"))
            await self._report(record)
            return
        if record is not None:
            # started before a crash: its effects are unknown, so it is
            # reported failed rather than run a second time
            record = self.journal.finish(command_id, record.get("command"),
                                         {"status": "failed",
                                          "error": "interrupted"})
            self._emit("interrupted", command_id=command_id)
            await self._report(record)
            return
        self._active.add(command_id)
        lane = message.get("lane")
        self._lane(lane if isinstance(lane, str) else "").put_nowait(message)

    def _lane(self, name):
        """The queue of a lane, with the task that runs its commands one
        at a time, in the order they came."""
        if name not in self._lanes:
            queue = asyncio.Queue()
            task = asyncio.ensure_future(self._run_lane(queue))
            self._lanes[name] = (queue, task)
        return self._lanes[name][0]

    async def _run_lane(self, queue):
        while True:
            message = await queue.get()
            try:
                if not self._stop.is_set():
                    await self._execute(message)
            finally:
                self._active.discard(message["command_id"])

    async def _execute(self, message):
        command_id = message["command_id"]
        command = message.get("command")
        try:
            self.journal.start(command_id, command)
        except OSError as exc:
            # without the record it could run twice: do not run it
            log.error("wirehub agent: journal: %s", exc)
            await self._report({"command_id": command_id, "status": "failed",
                                "error": "journal: %s" % exc})
            return
        self._emit("command", command_id=command_id, command=command,
                   attempt=message.get("attempt"))
        outcome = await self._call(command, message.get("payload"))
        record = self.journal.finish(command_id, command, outcome)
        self._emit("finished", command_id=command_id, **outcome)
        await self._report(record)

    async def _call(self, command, payload):
        """The handler's outcome: {"status", "result"} or {"status",
        "error"}."""
        handler = self._handlers.get(command)
        try:
            if handler is None:
                raise LookupError("no handler for command %r" % command)
            if inspect.iscoroutinefunction(handler):
                value = await handler(payload)
            else:
                value = await _in_thread(handler, payload)
            # the server takes strict JSON only
            json.dumps(value, allow_nan=False)
        except Exception as exc:
            text = str(exc) or type(exc).__name__
            return {"status": "failed", "error": text[:ERROR_MAX]}
        outcome = {"status": "completed"}
        if value is not None:
            outcome["result"] = value
        return outcome

    # ----------------------------------------------------------- results

    async def _report(self, record):
        """Sends a command_result until the server acknowledges it."""
        command_id = record["command_id"]
        message = {"type": "command_result", "command_id": command_id,
                   "status": record["status"]}
        for key in ("result", "error"):
            if key in record:
                message[key] = record[key]
        old = self._pending.get(command_id)
        result = _Result(message, old.ref if old else
                         "r%d" % next(self._ref_seq))
        self._pending[command_id] = result
        self._refs[result.ref] = command_id
        await self._send_result(command_id)

    async def _send_result(self, command_id):
        result = self._pending.get(command_id)
        if result is None:
            return
        result.sent = time.monotonic()
        message = dict(result.message, ref=result.ref)
        if await self._send(message):
            self._emit("reported", command_id=command_id,
                       status=message["status"])

    async def _retry_results(self):
        """Sends again what was not acknowledged within result_retry."""
        while True:
            await asyncio.sleep(min(1.0, self.result_retry))
            now = time.monotonic()
            for command_id, result in list(self._pending.items()):
                if now - result.sent >= self.result_retry:
                    await self._send_result(command_id)

    def _on_accepted(self, command_id):
        result = self._pending.pop(command_id, None)
        if result is None:
            return
        self._refs.pop(result.ref, None)
        self._mark_acked(command_id)
        self._emit("acked", command_id=command_id)

    def _on_result_error(self, message):
        command_id = self._refs[message["ref"]]
        code = message.get("code")
        if code in RETRYABLE:
            return      # _retry_results sends it again
        # not_found (not ours), bad_request (the command already ended,
        # expired or cancelled): sending again cannot change that
        result = self._pending.pop(command_id, None)
        if result is not None:
            self._refs.pop(result.ref, None)
        self._mark_acked(command_id)
        log.info("wirehub agent: result of %s refused: %s %s", command_id,
                 code, message.get("message"))
        self._emit("result_refused", command_id=command_id, code=code)

    def _mark_acked(self, command_id):
        try:
            self.journal.acked(command_id)
        except OSError as exc:
            log.warning("wirehub agent: journal: %s", exc)

    def _load_unacked(self):
        """Results journaled before a crash but never acknowledged."""
        for record in self.journal.unacked():
            message = {"type": "command_result",
                       "command_id": record["command_id"],
                       "status": record["status"]}
            for key in ("result", "error"):
                if key in record:
                    message[key] = record[key]
            ref = "r%d" % next(self._ref_seq)
            self._pending[record["command_id"]] = _Result(message, ref)
            self._refs[ref] = record["command_id"]

    # -------------------------------------------------------------- end

    async def _drain_lanes(self):
        """Lets the running handlers finish (up to stop_timeout), then
        cancels what is left; queued commands stay with the server."""
        tasks = [task for _, task in self._lanes.values()]
        for queue, _ in self._lanes.values():
            while not queue.empty():
                self._active.discard(queue.get_nowait()["command_id"])
        deadline = time.monotonic() + self.stop_timeout
        while self._active and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # a handler still running stays "started" in the journal: the
        # next run reports it interrupted
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()
        self._active.clear()

    def _emit(self, name, **info):
        if self.on_event is None:
            return
        try:
            self.on_event(name, info)
        except Exception:
            log.exception("wirehub agent: on_event(%s) failed", name)


async def _in_thread(fn, payload):
    """fn(payload) in a daemon thread of its own: unlike an executor's
    threads, one that never returns does not keep the process from
    exiting after stop()."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(value, exc):
        if not future.done():
            if exc is None:
                future.set_result(value)
            else:
                future.set_exception(exc)

    def work():
        value, error = None, None
        try:
            value = fn(payload)
        except Exception as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:
            pass        # the loop is gone: nobody waits for it any more

    threading.Thread(target=work, name="wirehub-command",
                     daemon=True).start()
    return await future


class _Result:
    """A command_result waiting for command_result_accepted."""

    __slots__ = ("message", "ref", "sent")

    def __init__(self, message, ref):
        self.message = message
        self.ref = ref
        self.sent = 0.0
