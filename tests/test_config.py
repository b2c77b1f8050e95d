"""Settings: one table, config.toml, DIGEST_<TABLE>_<KEY> overrides, clear errors, and the README in sync."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import ROOT

from digest.cli import cli
from digest.config import load, markdown_table
from digest.errors import ConfigError


def test_environment_overrides_config_toml_which_overrides_defaults(home, monkeypatch):
    (home / "config.toml").write_text('[smtp]\nhost = "mail.test"\nport = 2525\n[rank]\ntop_k = 3\n')
    monkeypatch.setenv("DIGEST_SMTP_PORT", "465")
    config = load(home)
    assert (config["smtp.host"], config["smtp.port"], config["rank.top_k"], config["feeds.initial_episodes"]) == (
        "mail.test",
        465,
        3,
        3,
    )
    assert config.source("smtp.port") == "env" and config.source("smtp.host") == "config.toml"
    assert config.source("rank.diversity") == "default"
    rows = json.loads(CliRunner().invoke(cli, ["config", "--json"]).output)["settings"]
    assert {r["name"]: r["value"] for r in rows}["smtp.port"] == 465


@pytest.mark.parametrize(
    "toml,env,message",
    [
        ("[smtp]\nprot = 25\n", {}, "unknown setting 'smtp.prot'"),
        ('[smtp]\nport = "many"\n', {}, "smtp.port expects int, found 'many'"),
        ("", {"DIGEST_LLM_MODE": "perhaps"}, "llm.mode expects one of off, rewrite, select"),
        ("[smtp\n", {}, "config.toml"),
    ],
)
def test_bad_settings_say_what_was_expected(home, monkeypatch, toml, env, message):
    (home / "config.toml").write_text(toml)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load(home)
    out = CliRunner().invoke(cli, ["feeds", "list"])
    assert out.exit_code == 1 and out.output.startswith("Error:")


def test_readme_settings_table_is_generated_from_the_settings():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- settings:start")[1].split("-->", 1)[1].split("<!-- settings:end -->")[0]
    assert block.strip() == markdown_table().strip()


def test_python_m_digest_and_help_work_without_loading_models():
    out = subprocess.run([sys.executable, "-m", "digest", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "Scan new podcasts" in out.stdout
    for command in ["run", "feeds", "episodes", "transcript", "show", "search", "serve", "schedule", "subscribers"]:
        assert command in out.stdout
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import digest.cli, sys; print([m for m in sys.modules if m in "
            "('torch', 'sentence_transformers', 'faster_whisper', 'faiss')])",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "[]"


def test_a_renamed_setting_says_what_replaced_it(home):
    (home / "config.toml").write_text("[llm]\nenabled = true\n")
    with pytest.raises(ConfigError, match=r'llm.enabled was replaced: set llm.mode = "rewrite"'):
        load(home)


def test_a_model_mode_without_a_model_is_a_configuration_error_at_start(home):
    """llm.mode = select with no llm.base_url fails when the configuration loads, not halfway through a run."""
    (home / "config.toml").write_text('[llm]\nmode = "select"\nmodel = "qwen2.5:7b-instruct"\n')
    with pytest.raises(ConfigError, match="llm.mode = 'select' needs llm.base_url"):
        load(home)
    out = CliRunner().invoke(cli, ["--home", str(home), "run", "--dry-run"])
    assert out.exit_code == 1 and out.output.startswith("Error: ") and "llm.base_url" in out.output
    (home / "config.toml").write_text('[llm]\nmode = "select"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n')
    assert load(home)["llm.mode"] == "select"
