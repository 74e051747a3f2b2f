"""docker/: the files `make test-docker` runs with podman, checked where
no container engine runs (as in `make test`): compose.yaml parses and
describes two services sharing /run/wirehub, non-root, read-only, with
healthchecks and no capabilities; every file the Dockerfiles COPY
exists; every wirehubd directive can be set from the environment, and
the entry point turns those variables into a configuration wirehubd
accepts (`wirehubd-entrypoint -t`, against build/wirehubd)."""

import os
import re
import subprocess

import pytest

import wh

# files, and the entry point against build/wirehubd
pytestmark = pytest.mark.nosan

yaml = pytest.importorskip("yaml", reason="python3-yaml (scripts/deps.sh)")

DOCKER = os.path.join(wh.ROOT, "docker")
DOCKERFILES = ("Dockerfile.nginx", "Dockerfile.wirehubd")


def compose():
    with open(os.path.join(DOCKER, "compose.yaml")) as f:
        return yaml.safe_load(f)


def directives():
    """The names in wirehubd's directive table (worker/config.c)."""
    with open(os.path.join(wh.ROOT, "worker", "config.c")) as f:
        text = f.read()
    names = re.findall(r'\{ "([a-z_]+)", wh_conf_\w+, \d, \d \}', text)
    assert len(names) >= 10, names
    return names


def test_compose_two_services_sharing_the_socket_dir():
    doc = compose()
    services = doc["services"]
    assert set(services) == {"nginx", "wirehubd"}
    for name, svc in services.items():
        assert svc["read_only"] is True, name
        assert svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert "/tmp" in svc["tmpfs"], name
        assert "wirehub-run:/run/wirehub" in svc["volumes"], name
        # one word: podman-compose 1.0.3 breaks the quoting of more
        test = svc["healthcheck"]["test"]
        assert test[0] == "CMD" and len(test) == 2, name
        assert "user" not in svc, "%s: the image's USER is non-root" % name
        dockerfile = svc["build"]["dockerfile"]
        assert os.path.exists(os.path.join(DOCKER, "..", dockerfile))
        assert svc["build"]["args"]["BASE"].endswith(
            "debian:bookworm-slim}"), name
    assert "wirehub-data:/var/lib/wirehub" in services["wirehubd"]["volumes"]
    assert services["nginx"]["depends_on"]["wirehubd"]["condition"] == \
        "service_healthy"
    assert services["nginx"]["secrets"] == ["wirehub_jwt"]
    assert "WIREHUB_JWT_KEY_FILE=/run/secrets/wirehub_jwt" in \
        services["nginx"]["environment"]
    assert set(doc["volumes"]) == {"wirehub-data", "wirehub-run"}


def test_every_wirehubd_directive_passes_through_compose():
    # names alone: each passed through when set, absent when not
    env = compose()["services"]["wirehubd"]["environment"]
    assert sorted(env) == sorted(["WIREHUBD_CONFIG"] + [
        "WIREHUBD_" + name.upper() for name in directives()])


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_copies_existing_files_and_drops_root(name):
    with open(os.path.join(DOCKER, name)) as f:
        text = f.read()
    # one logical line per instruction
    lines = re.sub(r"\\\n", " ", text).splitlines()
    instructions = [ln.split(None, 1) for ln in lines
                    if ln.strip() and not ln.lstrip().startswith("#")]
    copies = [args.split() for op, *rest in instructions
              for args in rest if op == "COPY"]
    assert copies
    for args in copies:
        if args[0].startswith("--from="):
            continue
        for src in args[:-1]:
            if src == ".":
                continue
            assert os.path.exists(os.path.join(wh.ROOT, src)), src
    users = [rest[0].strip() for op, *rest in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    assert any(op == "HEALTHCHECK" for op, *_ in instructions)
    entry = [rest[0] for op, *rest in instructions if op == "ENTRYPOINT"]
    assert len(entry) == 1
    froms = [rest[0].split()[0] for op, *rest in instructions
             if op == "FROM"]
    assert froms == ["${BASE}", "${BASE}"], froms


def test_entrypoints_are_executable():
    for name in ("nginx-entrypoint.sh", "wirehubd-entrypoint.sh",
                 "nginx-healthcheck.sh", "wirehubd-healthcheck.sh",
                 "test-docker.sh"):
        path = os.path.join(DOCKER, name)
        assert os.access(path, os.X_OK), path
        res = subprocess.run(["bash", "-n", path], capture_output=True,
                             text=True)
        assert res.returncode == 0, res.stderr


def entrypoint_config(tmp_path, env):
    full = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path),
            "WIREHUBD_BIN": wh.WIREHUBD,
            "WIREHUBD_LISTEN": "unix:%s/s.sock" % tmp_path,
            "WIREHUBD_STORAGE": "%s/db" % tmp_path}
    full.update(env)
    return subprocess.run(["sh", os.path.join(DOCKER,
                                              "wirehubd-entrypoint.sh"),
                           "-t"], env=full, capture_output=True, text=True,
                          timeout=30)


def test_entrypoint_turns_variables_into_directives(tmp_path):
    res = entrypoint_config(tmp_path, {
        "WIREHUBD_HISTORY": "length=5 ttl=1h",
        "WIREHUBD_QUOTA": "workspace=* channels=5;  workspace=acme\n"
                          "   channels=7",
        "WIREHUBD_MQTT": "host=127.0.0.1 port=1883",
        "WIREHUBD_INGEST": "sensors/+/data workspace=demo\n"
                           "  channel=sensors/{1} type=reading key={1}",
        "WIREHUBD_LOG": "stderr info format=json",
        "WIREHUBD_STATS": "",
    })
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "history length=5 ttl=1h;",
        "ingest sensors/+/data workspace=demo channel=sensors/{1} "
        "type=reading key={1};",
        "listen unix:%s/s.sock;" % tmp_path,
        "log stderr info format=json;",
        "mqtt host=127.0.0.1 port=1883;",
        "quota workspace=* channels=5;",
        "quota workspace=acme channels=7;",
        "storage %s/db;" % tmp_path,
    ]
    assert "configuration ok" in res.stderr


def test_entrypoint_defaults_and_bad_values(tmp_path):
    res = entrypoint_config(tmp_path, {"WIREHUBD_LISTEN": "",
                                       "WIREHUBD_STORAGE": ""})
    lines = res.stdout.splitlines()
    assert lines == [
        "listen unix:/run/wirehub/wirehubd.sock mode=0660 group=www-data;",
        "storage /var/lib/wirehub map_size=1g;",
        "log stderr info;"]
    res = entrypoint_config(tmp_path, {"WIREHUBD_HISTORY": "lenght=5"})
    assert res.returncode == 1
    assert "unknown history parameter" in res.stderr
