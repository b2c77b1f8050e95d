"""The installed wheel carries its templates, prompts and demo, and works outside the repository."""

from __future__ import annotations

import subprocess
import sys

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
