"""Resume with `since` through the real stack (nginx with 2 workers,
wirehubd with `history length=20`): exactly the missed messages then
live ones, `recovered` true or false as DESIGN.md says."""

import asyncio

import pytest

import chan
import wh
from chan import Client, assert_channel_messages, run

LENGTH = 20


@pytest.fixture(scope="module")
def daemon():
    d = chan.Daemon("resume", history="length=%d ttl=24h" % LENGTH)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ngx(daemon, nginx_factory, keys):
    return chan.start_nginx(nginx_factory, daemon)


class Channel:
    """A fresh channel of a fresh workspace and a service API client."""

    def __init__(self, ngx, name="room/1", workspace=None):
        self.ngx = ngx
        self.workspace = workspace or chan.unique("resume")
        self.name = name
        self.api = wh.Api(ngx.port, chan.service_token(self.workspace))
        self.epoch = None

    def publish(self, n):
        """Publishes n messages; returns their ids."""
        ids = []
        for _ in range(n):
            mid, epoch = chan.publish_ok(self.api, self.name, {"n": 0})
            assert self.epoch in (None, epoch)
            self.epoch = epoch
            ids.append(mid)
        return ids

    def token(self, sub="viewer"):
        return chan.token(sub, self.workspace)

    async def client(self, worker=None, sub="viewer"):
        if worker is None:
            return await Client.open(self.ngx.rport, self.token(sub))
        return await chan.open_on(self.ngx, self.token(sub), worker)

    def close(self):
        self.api.close()


@pytest.fixture
def channel(ngx):
    c = Channel(ngx)
    yield c
    c.close()


async def resume(client, channel, since_id, epoch):
    return await client.subscribe(channel.name,
                                  since={"id": since_id, "epoch": epoch})


@pytest.mark.parametrize("watcher", [False, True],
                         ids=["worker-without-subscribers",
                              "worker-with-a-live-subscriber"])
def test_reconnect_gets_exactly_the_missed_then_live(ngx, channel, watcher):
    first, second = sorted(ngx.workers())

    async def scenario():
        live = None
        if watcher:
            live = await channel.client(second, "watcher")
            await live.subscribe(channel.name)
        c = await channel.client(first)
        s = await c.subscribe(channel.name)
        assert (s["id"], s["recovered"]) == (0, True), s
        assert channel.publish(5) == [1, 2, 3, 4, 5]
        assert_channel_messages(await c.messages(5), channel.name,
                                range(1, 6), s["epoch"])
        await c.close()

        assert channel.publish(5) == [6, 7, 8, 9, 10]
        if live:
            assert_channel_messages(await live.messages(10), channel.name,
                                    range(1, 11))
        # back on the other worker, which may or may not know the channel
        c = await channel.client(second)
        r = await resume(c, channel, 5, s["epoch"])
        assert (r["id"], r["epoch"], r["recovered"]) == (
            10, s["epoch"], True), r
        assert_channel_messages(await c.messages(5), channel.name,
                                range(6, 11), s["epoch"])
        assert await c.barrier() == []

        assert channel.publish(2) == [11, 12]
        assert_channel_messages(await c.messages(2), channel.name, [11, 12])
        assert await c.barrier() == []
        await c.close()
        if live:
            assert_channel_messages(await live.messages(2), channel.name,
                                    [11, 12])
            await live.close()

    run(scenario())


def test_resume_while_messages_keep_coming(ngx, channel):
    """Drops and resumes on alternating workers while a publisher runs
    (slowly enough that 20 messages of history cover the gap); a live
    subscriber on one worker makes that path hold live messages behind
    the replay."""
    workers = sorted(ngx.workers())
    pub = chan.Publisher(ngx.port, chan.service_token(channel.workspace),
                         channel.name, "stream", pause=0.04)

    async def scenario():
        live = await channel.client(workers[0], "watcher")
        await live.subscribe(channel.name)
        c = await channel.client(workers[1])
        s = await c.subscribe(channel.name)
        epoch = s["epoch"]
        pub.start()
        seen = []
        for cycle in range(6):
            got = await c.messages(4)
            seen += [m["id"] for m in got]
            await c.close()
            await asyncio.sleep(0.05)
            c = await channel.client(workers[cycle % 2])
            r = await resume(c, channel, seen[-1], epoch)
            assert r["recovered"] is True, r
            assert r["id"] >= seen[-1], r
        pub.stop()
        pub.join_checked()
        last = max(a[0] for a in pub.acked)
        while seen[-1] < last:
            seen += [m["id"] for m in await c.messages(1)]
        assert seen == list(range(1, last + 1))
        assert await c.barrier() == []
        ids = [m["id"] for m in await live.messages(last)]
        assert ids == list(range(1, last + 1))
        await c.close()
        await live.close()

    try:
        run(scenario())
    finally:
        pub.stop()
    assert [a[0] for a in pub.acked] == list(range(1, len(pub.acked) + 1))


def test_since_last_id_recovers_nothing_to_replay(ngx, channel):
    async def scenario():
        channel.publish(3)
        c = await channel.client()
        r = await resume(c, channel, 3, channel.epoch)
        assert (r["id"], r["epoch"], r["recovered"]) == (
            3, channel.epoch, True), r
        assert await c.barrier() == []
        assert channel.publish(1) == [4]
        assert_channel_messages(await c.messages(1), channel.name, [4])
        await c.close()

    run(scenario())


def test_since_zero_replays_the_whole_history(ngx, channel):
    async def scenario():
        channel.publish(3)
        c = await channel.client()
        r = await resume(c, channel, 0, channel.epoch)
        assert (r["id"], r["recovered"]) == (3, True), r
        assert_channel_messages(await c.messages(3), channel.name, [1, 2, 3],
                                channel.epoch)
        assert await c.barrier() == []
        await c.close()

    run(scenario())


def test_several_channels_resume_in_one_subscribe(ngx, channel):
    other = Channel(ngx, "room/2", channel.workspace)

    async def scenario():
        channel.publish(4)
        other.publish(6)
        c = await channel.client()
        await c.send({"type": "subscribe", "ref": "both",
                      "channels": [channel.name, other.name],
                      "since": {channel.name: {"id": 1,
                                               "epoch": channel.epoch},
                                other.name: {"id": 4,
                                             "epoch": other.epoch}}})
        got = await c.messages(2 + 3 + 2)
        for name, ids in ((channel.name, [2, 3, 4]), (other.name, [5, 6])):
            mine = [m for m in got if m.get("channel") == name]
            assert mine[0]["type"] == "subscribed", mine
            assert mine[0]["ref"] == "both", mine
            assert (mine[0]["id"], mine[0]["recovered"]) == (ids[-1], True)
            assert_channel_messages(mine[1:], name, ids)
        assert await c.barrier() == []
        await c.close()

    try:
        run(scenario())
    finally:
        other.close()


def test_trimmed_history_is_not_recovered(ngx, channel):
    """history length=20: after 35 messages ids 16..35 remain."""

    async def scenario():
        channel.publish(35)
        c = await channel.client()
        # since 15: 16..35 are all there
        r = await resume(c, channel, 15, channel.epoch)
        assert (r["id"], r["recovered"]) == (35, True), r
        assert_channel_messages(await c.messages(20), channel.name,
                                range(16, 36), channel.epoch)
        assert await c.barrier() == []
        await c.close()

        # since 14: id 15 is gone
        c = await channel.client()
        r = await resume(c, channel, 14, channel.epoch)
        assert (r["id"], r["epoch"], r["recovered"]) == (
            35, channel.epoch, False), r
        assert await c.barrier() == []
        assert channel.publish(1) == [36]
        assert_channel_messages(await c.messages(1), channel.name, [36])
        await c.close()

        c = await channel.client()
        r = await resume(c, channel, 5, channel.epoch)
        assert (r["id"], r["recovered"]) == (36, False), r
        assert await c.barrier() == []
        await c.close()

    run(scenario())


@pytest.mark.parametrize("since", [
    {"id": 3, "epoch": "zzzzzzzz"},
    {"id": 3, "epoch": ""},
    {"id": 3},
    {"id": 9, "epoch": None},
], ids=["other-epoch", "empty-epoch", "no-epoch", "past-the-last-id"])
def test_unrecoverable_since(ngx, channel, since):
    async def scenario():
        channel.publish(5)
        if "epoch" in since and since["epoch"] is None:
            since["epoch"] = channel.epoch
        c = await channel.client()
        r = await c.subscribe(channel.name, since=since)
        assert (r["id"], r["epoch"], r["recovered"]) == (
            5, channel.epoch, False), r
        assert await c.barrier() == []
        assert channel.publish(1) == [6]
        assert_channel_messages(await c.messages(1), channel.name, [6])
        assert await c.barrier() == []
        await c.close()

    run(scenario())


def test_history_via_api_matches_what_subscribers_got(ngx, channel):
    async def scenario():
        c = await channel.client()
        await c.subscribe(channel.name)
        channel.publish(4)
        got = await c.messages(4)
        await c.close()
        return got

    got = run(scenario())
    hist = channel.api.history(channel.name)
    assert hist.status == 200, hist
    assert hist.json() == {"items": got, "next": None}


def test_logs_clean(ngx, daemon):
    ngx.assert_clean_log()
    assert daemon.alive()
