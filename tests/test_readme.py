"""README.md tells the truth about the things a test can check."""

from __future__ import annotations

from service.config_reference import END, START, reference_markdown
from tests.support.group import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_configuration_reference_is_the_one_generated_from_config_yaml():
    assert START in README and END in README
    shown = README[README.index(START) : README.index(END) + len(END)]
    assert shown == reference_markdown(), "run: python -m service.config_reference"


def test_the_two_commands_are_the_ones_ci_runs():
    assert "pip install -r requirements.txt && python runner.py" in README
    assert "pip install -r requirements.txt && python -m pytest" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "-r requirements.txt" in ci and "\npython -m pytest\n" in ci
