"""The README stays true: its example runs, and CI runs exactly its test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_the_readme_gives_exactly_two_setup_commands():
    commands = [line for block in _blocks("bash") for line in block.splitlines()
                if line.strip() and not line.startswith("#")]
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert "run_all.py" in main_job and "python3 -m venv" in main_job
    assert "pytest" in tests and ".[test]" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    tests_command = [line for block in _blocks("bash") for line in block.splitlines()
                     if "pytest" in line][0]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests_command in ci, f"{tests_command!r} is not a line of .ci/run"


def test_the_readme_examples_run(jax):
    examples = _blocks("python")
    assert len(examples) >= 2, "the short example and 'Write your own layer'"
    for example in examples:
        exec(compile(example, "README.md", "exec"), {})


def test_every_figure_the_readme_shows_is_committed():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert images, "the README shows no figures"
    missing = [path for path in images if not (ROOT / path).is_file()]
    assert not missing, missing


def test_the_main_job_installs_what_the_note_experiments_import():
    """run_all's scripts check gradients against jax.grad: the experiments extra brings jax."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["experiments"]
    names = {re.split(r"[<>=\[ ]", requirement)[0] for requirement in extras}
    assert {"jax", "matplotlib", "pillow"} <= names, names
