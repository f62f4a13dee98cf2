"""The experiments' command line: what ``--help`` says, and how ``--seed`` is refused.

Every script that takes ``--seed``/``--out``/``--quick`` builds its parser with
``_common.parse_args``; ``run_all.py`` has its own. ``--help`` exits before any
work is done, and so does a seed ``funcnet.random.key`` cannot take.
"""

import re

import pytest
from helpers import EXPERIMENTS, load_script

# the scripts whose parser is _common.parse_args(NAME or "name", __doc__, ...)
SCRIPTS = sorted(path.stem for path in EXPERIMENTS.glob("[!_]*.py")
                 if re.search(r"(?<![\w.])(_common\.)?parse_args\((NAME|\"\w+\")",
                              path.read_text()))


def help_text(module, capsys):
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_the_scripts_are_found():
    assert {"xor", "sine_regression", "classifier", "optimizers"} <= set(SCRIPTS), SCRIPTS


@pytest.mark.parametrize("name", [*SCRIPTS, "run_all"])
def test_help_says_the_whole_first_sentence(name, capsys):
    """xor.py's --help ended 'by full-batch gradient descent, beside the': the parser took
    the docstring's first line, and xor's first sentence runs over two."""
    module = load_script(name)
    text = " ".join(help_text(module, capsys).split())
    first_paragraph = " ".join(module.__doc__.strip().split("\n\n")[0].split())
    assert first_paragraph in text
    assert re.search(r"[.?!]$", first_paragraph), first_paragraph


@pytest.mark.parametrize("name", ["sine_regression", "hand_step", "run_all"])
@pytest.mark.parametrize("bad", ["-1", "x"])
def test_a_seed_random_key_cannot_take_is_a_usage_error(name, bad, tmp_path, capsys):
    """--seed -1 was a traceback from random.key deep inside the run (after the output
    folder was made), and hand_step, which draws nothing, recorded seed -1 in its metrics."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        load_script(name).main(["--quick", "--seed", bad, "--out", str(out)])
    assert exit_.value.code == 2
    assert "non-negative integer" in capsys.readouterr().err
    assert not out.exists()
