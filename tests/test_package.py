"""The installed wheel carries its templates, prompts and demo, and works outside the repository; the locks
agree with pyproject.toml, and the tests run in the locked environment."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_wheel_installed_outside_the_repo_finds_templates_prompts_and_demo(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path / "dist")],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("digest-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import digest, digest.render as r, digest.demo as d\n"
        "from digest.llm.prompting import prompt, schema\n"
        "from digest.models import Digest\n"
        "assert all(schema(t)['type'] == 'object' for t in ('map', 'agree', 'write', 'select', 'check'))\n"
        "assert prompt('check')[0]['content'].startswith('Task: check')\n"
        f"assert digest.__file__.startswith({str(target)!r}), digest.__file__\n"
        "print(len(r.environment().list_templates()), len(d.shows()))\n"
        "html, text = r.email_parts(Digest('2026-11-20'), subject_line='s', recipient='a@b.c', unsubscribe_url='u',"
        " archive_url='a')\n"
        "assert 'A quiet day' in html and 'A quiet day' in text\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(target)}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    templates, shows = map(int, out.stdout.split())
    assert templates >= 10 and shows == 6


def _pins(lock: str) -> dict[str, str]:
    """``name == version`` of every package a lock file holds, names canonical."""
    from packaging.utils import canonicalize_name

    text = (ROOT / "requirements" / lock).read_text()
    return {canonicalize_name(n): v for n, v in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)}


def test_the_locks_agree_with_pyproject_and_with_each_other():
    """Every requirement of pyproject.toml (the test extra for test.lock) is pinned in range, with hashes;
    the runtime lock is the test lock's versions, so the demo runs what the tests tested. `make lock` mends it."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        "runtime.lock": project["dependencies"],
        "test.lock": project["dependencies"] + project["optional-dependencies"]["test"],
    }
    for lock, requirements in wanted.items():
        pins = _pins(lock)
        text = (ROOT / "requirements" / lock).read_text()
        assert len(re.findall(r"^\S+==\S+ \\\n\s+--hash=sha256:", text, re.M)) == len(pins), "a pin without a hash"
        for line in requirements:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            assert name in pins, f"{req.name} is not in requirements/{lock}; run `make lock`"
            assert req.specifier.contains(pins[name], prereleases=True), f"{lock}: {name}=={pins[name]} not {req}"
    runtime, test = _pins("runtime.lock"), _pins("test.lock")
    assert {n: test.get(n) for n in runtime} == runtime
    assert test["torch"].endswith("+cpu")  # the CPU build, never a CUDA one


def test_the_environment_is_the_locked_one():
    """What the tests run with is exactly what requirements/test.lock says (`make test` installs from it)."""
    from importlib.metadata import distributions

    from packaging.utils import canonicalize_name

    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    locked = _pins("test.lock")
    differ = {n: (v, installed.get(n)) for n, v in locked.items() if installed.get(n) != v}
    assert not differ, f"installed versions differ from requirements/test.lock (locked, installed): {differ}"
