"""One error path: bad input is one line and exit 2, Ctrl-C 130, a training stopped by a signal 128 + its number."""
import signal

from amodal.cli.errors import run_command
from amodal.training.loop import TrainingStopped
from amodal.utils.optional import MissingDependency


def _raise(error):
    def run():
        raise error
    return run


def test_exit_codes_and_lines(capsys):
    assert run_command(_raise(ValueError("bad.json: no 'model' key;\n  pass another file"))) == 2
    assert capsys.readouterr().err == "error: bad.json: no 'model' key; pass another file\n"
    assert run_command(_raise(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err == "interrupted\n"
    # a shell reports a process ended by signal n as 128 + n: SIGTERM is 15, SIGINT 2
    assert run_command(_raise(TrainingStopped("stopped by SIGTERM; run it again with --resume", signal.SIGTERM))) == 143
    assert capsys.readouterr().err == "stopped by SIGTERM; run it again with --resume\n"
    assert run_command(_raise(TrainingStopped("stopped by SIGINT", signal.SIGINT))) == 130
    assert run_command(lambda: 0) == 0


def test_a_missing_optional_extra_is_bad_input_not_a_bug(capsys):
    # an extra the user has not installed is theirs to fix: one line naming it, exit 2
    assert run_command(_raise(MissingDependency("onnxruntime is not installed: pip install 'amodal[onnx]'"))) == 2
    assert capsys.readouterr().err == "error: onnxruntime is not installed: pip install 'amodal[onnx]'\n"
    assert run_command(_raise(ImportError("a broken import inside the library"))) == 1  # still a bug
