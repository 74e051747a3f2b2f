"""web/ as the npm package `wirehub`: dist/ is what build.mjs makes of
src/wirehub.js, `npm pack` ships exactly the files it should, the tarball
installs offline into an empty project where require() gets the CommonJS
build and import the ESM one, and a TypeScript consumer compiles against
the declarations with `tsc --noEmit --strict` (Debian's node-typescript)
while a wrong use does not.  No server is needed."""

import json
import os
import shutil
import subprocess
import tarfile

import pytest

import wh

pytestmark = pytest.mark.nosan      # node and tsc only

WEB = os.path.join(wh.ROOT, "web")
FIXTURES = os.path.join(wh.ROOT, "t", "web", "package")
PACKAGE_FILES = {
    "package/package.json",
    "package/README.md",
    "package/index.d.ts",
    "package/dist/wirehub.mjs",
    "package/dist/wirehub.cjs",
}


def run(cmd, cwd, timeout=120):
    res = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=timeout)
    return res.returncode, res.stdout.decode("utf-8", "replace")


def npm(args, cwd, tmp):
    """npm with a cache of its own: nothing from the user's, no network
    needed for a local tarball without dependencies."""
    return run(["npm", "--cache", os.path.join(tmp, "npm-cache"),
                "--no-audit", "--no-fund", "--no-update-notifier",
                "--loglevel=error"] + args, cwd)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(tarball path, project dir with the tarball installed)."""
    tmp = str(tmp_path_factory.mktemp("npm"))
    rc, out = npm(["pack", "--pack-destination", tmp, "--json"], WEB, tmp)
    assert rc == 0, out
    name = json.loads(out[out.index("["):])[0]["filename"]
    tarball = os.path.join(tmp, name)

    project = os.path.join(tmp, "app")
    os.mkdir(project)
    with open(os.path.join(project, "package.json"), "w") as f:
        json.dump({"name": "consumer", "version": "1.0.0",
                   "private": True}, f)
    rc, out = npm(["install", "--offline", tarball], project, tmp)
    assert rc == 0, out
    for name in os.listdir(FIXTURES):
        shutil.copy(os.path.join(FIXTURES, name), project)
    return tarball, project


def test_dist_is_built_from_the_source():
    rc, out = run(["node", os.path.join(WEB, "build.mjs"), "--check"], WEB)
    assert rc == 0, out


def test_pack_ships_exactly_the_package_files(installed):
    tarball, _ = installed
    version = json.load(open(os.path.join(WEB, "package.json")))["version"]
    assert os.path.basename(tarball) == "wirehub-%s.tgz" % version
    with tarfile.open(tarball) as tar:
        names = {m.name for m in tar.getmembers() if m.isfile()}
    assert names == PACKAGE_FILES
    # the shipped builds are the committed ones, byte for byte
    with tarfile.open(tarball) as tar:
        for build in ("wirehub.mjs", "wirehub.cjs"):
            shipped = tar.extractfile("package/dist/" + build).read()
            with open(os.path.join(WEB, "dist", build), "rb") as f:
                assert shipped == f.read()


def test_require_gets_the_commonjs_build(installed):
    _, project = installed
    rc, out = run(["node", "cjs.cjs"], project)
    assert rc == 0, out
    assert json.loads(out) == {
        "kind": "cjs", "type": "function", "same": True, "sub": True,
        "state": "pending", "error": "x",
        "file": "wirehub/dist/wirehub.cjs"}


def test_import_gets_the_esm_build(installed):
    _, project = installed
    rc, out = run(["node", "esm.mjs"], project)
    assert rc == 0, out
    # cjsOther: the two builds are two modules, as with any dual package
    assert json.loads(out) == {
        "kind": "esm", "type": "function", "same": True, "sub": True,
        "state": "pending", "error": "x",
        "file": "wirehub/dist/wirehub.mjs", "cjsOther": True}


def test_typescript_consumer_compiles_strict(installed):
    _, project = installed
    rc, out = run(["tsc", "--noEmit", "--strict", "-p", "tsconfig.json"],
                  project)
    assert rc == 0, out
    assert out.strip() == ""


def test_typescript_rejects_a_wrong_use(installed):
    """the declarations are not `any`: a publish without its type and a
    state that is not a SubscriptionState are errors."""
    _, project = installed
    rc, out = run(["tsc", "--noEmit", "--strict", "-p", "tsconfig.bad.json"],
                  project)
    assert rc != 0, out
    errors = [line for line in out.splitlines() if "error TS" in line]
    assert len(errors) == 2, out
    assert errors[0].startswith("bad.ts(5,"), out
    assert "TS2554" in errors[0], out    # expected 3 arguments, got 2
    assert errors[1].startswith("bad.ts(6,"), out
    assert "TS2322" in errors[1], out    # not assignable to 'open'
