"""The ``irfa-nwb`` command line: options, exit statuses, messages, inspect, Ctrl-C, outputs.

Each test checks values (exit status, the words of a message, what was written), on tiny
simulated files.
"""

from __future__ import annotations

import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from irfa_nwb._version import __version__
from irfa_nwb.cli.main import (
    COMMANDS,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    _load_kwargs,
    _model_kwargs,
    build_parser,
    error_message,
    main,
)
from irfa_nwb.cli.options import (
    ESTIMATOR_CLI_DEFAULTS,
    LOADER_NOT_ON_COMMAND_LINE,
    NOT_ON_COMMAND_LINE,
    estimator_options,
    loader_options,
    parse_parameters,
)

ROOT = Path(__file__).resolve().parents[1]
#: a model small enough to train in a second or two on a CPU, without pretrained weights
TINY = ["--image-size", "16", "--width", "8", "--channels", "8", "--batch-size", "8",
        "--perceptual-weight", "0", "--adversarial-weight", "0"]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "session.nwb"
    code = main(["--quiet", "simulate", str(path), "--n-stimuli", "48", "--n-test", "8",
                 "--n-repeats", "2", "--image-size", "16"])
    assert code == EXIT_OK and path.is_file()
    return path


@pytest.fixture(scope="module")
def mua_session(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_mua") / "mua.nwb"
    code = main(["simulate", str(path), "--n-stimuli", "24", "--n-test", "4", "--n-repeats", "2",
                 "--image-size", "16", "--responses", "mua", "--quiet"])
    assert code == EXIT_OK
    return path


def _error_line(err: str) -> str:
    """The one line of a run-time error (after any warnings)."""
    lines = [line for line in err.splitlines() if line.startswith("irfa-nwb: error:")]
    assert len(lines) == 1, err
    return lines[0]


# ----------------------------------------------------------------------------- help, version


def test_help_lists_commands_global_options_and_exit_statuses(capsys):
    assert main(["--help"]) == EXIT_OK
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert command in text
    assert "examples:" in text
    assert "global options (before or after the command)" in text
    for status in ("0    success", "1    failure", "2    usage", "130  interrupted"):
        assert status in text


def test_python_dash_m_runs_the_command_line():
    # what `torchrun -m irfa_nwb fit ...` relies on
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "irfa_nwb", "--version"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == EXIT_OK, done.stderr
    assert done.stdout == f"irfa-nwb {__version__}\n"


def test_version(capsys):
    assert main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out == f"irfa-nwb {__version__}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_shows_defaults(command, capsys):
    assert main([command, "--help"]) == EXIT_OK
    text = " ".join(capsys.readouterr().out.split())  # undo the wrapping
    assert "(default: " in text
    assert "-v, --verbose" in text and "-q, --quiet" in text  # accepted after the command too
    if command == "fit":
        assert "--lr FLOAT Generator learning rate (Adam, betas (0.5, 0.999)). (default: 0.00078)" \
            in text
        assert "(default: 8 15 22 29 35)" in text  # a tuple, as it is typed
        assert "--window START STOP Response window" in text and "(default: 0.0 0.2)" in text
        assert "--max-iter INT, --epochs INT" in text and "--random-state INT|none, --seed" in text
        assert "unit_groups: the heads are the electrode groups of the file" in text
    if command == "predict":
        assert "(default: as the model was fitted)" in text


# ----------------------------------------------------------------------------- global options


def test_global_options_are_accepted_before_and_after_the_command():
    parser = build_parser({"inspect"})
    assert parser.parse_args(["-v", "inspect", "f.nwb"]).verbose is True  # not reset
    assert parser.parse_args(["inspect", "f.nwb", "--verbose"]).verbose is True
    assert parser.parse_args(["inspect", "-q", "f.nwb"]).quiet is True
    plain = parser.parse_args(["inspect", "f.nwb"])
    assert plain.verbose is False and plain.quiet is False


def test_verbose_anywhere_prints_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "missing.nwb")
    for argv in (["inspect", missing], ["inspect", missing, "--verbose"],
                 ["-v", "inspect", missing]):
        assert main(argv) == EXIT_FAILURE
        err = capsys.readouterr().err
        assert ("Traceback" in err) == (len(argv) == 3), argv
        assert "no NWB file at" in _error_line(err)


def test_quiet_anywhere_silences_progress(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "a.nwb"), "--n-stimuli", "8", "--n-test", "2",
                 "--image-size", "8"]) == EXIT_OK
    assert "wrote" in capsys.readouterr().out
    assert main(["simulate", str(tmp_path / "b.nwb"), "--n-stimuli", "8", "--n-test", "2",
                 "--image-size", "8", "-q"]) == EXIT_OK
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------------- generated options


def _fit_args(*extra: str):
    return build_parser({"fit"}).parse_args(["fit", "in.nwb", "out.nwb", *extra])


def test_every_estimator_parameter_is_an_option_with_its_default():
    from irfa_nwb import IRFA

    params = IRFA().get_params()
    args = _fit_args()
    kwargs = _model_kwargs(args)
    assert set(args._model_params) | set(NOT_ON_COMMAND_LINE) == set(params)
    for name in args._model_params:
        expected = ESTIMATOR_CLI_DEFAULTS.get(name, (params[name], ""))[0]
        assert kwargs[name] == expected, name
    # names the issue found missing
    assert {"attention_lr", "adversarial_weight", "discriminator_lr"} <= set(args._model_params)


def test_estimator_options_parse_every_kind_of_value():
    kwargs = _model_kwargs(_fit_args(
        "--attention-lr", "0.005", "--adversarial-weight", "0", "--perceptual-layers", "8", "15",
        "--mixed-precision", "auto", "--condition-gradient", "--no-bottleneck-norm",
        "--discriminator-output", "logits", "--init", "none", "--discriminator-every", "5",
        "--early-stopping", "--epochs", "7", "--seed", "none", "--allow-download",
        "--checkpoint-path", "ck.safetensors", "--recipe", "pix2pix", "--device", "cpu",
        "--image-size", "32",
    ))
    expected = dict(
        attention_lr=0.005, adversarial_weight=0.0, perceptual_layers=(8, 15),
        mixed_precision="auto", condition_gradient=True, bottleneck_norm=False,
        discriminator_output="logits", init=None, discriminator_every=5, early_stopping=True,
        max_iter=7, random_state=None, allow_download=True, checkpoint_path="ck.safetensors",
        recipe="pix2pix", device="cpu", image_size=32, verbose=1,
    )
    assert {k: kwargs[k] for k in expected} == expected
    assert _model_kwargs(_fit_args("--mixed-precision", "false"))["mixed_precision"] is False
    assert _model_kwargs(_fit_args("--attention-lr", "none"))["attention_lr"] is None
    assert _model_kwargs(_fit_args("-q"))["verbose"] == 0


def test_options_are_generated_from_the_estimator_so_they_cannot_drift():
    from sklearn.base import BaseEstimator

    class Future(BaseEstimator):
        """An estimator with a parameter the command line has never heard of.

        Parameters
        ----------
        new_rate : float or None, default 0.5
            A brand-new knob, 50 % by default.
        mode : {"fast", "exact"}
            How to run.
        """

        def __init__(self, *, new_rate: float | None = 0.5, mode: str = "fast",
                     layers: tuple[int, ...] = (1, 2)):
            self.new_rate = new_rate
            self.mode = mode
            self.layers = layers

    options = {o.name: o for o in estimator_options(Future, exclude={}, aliases={}, defaults={})}
    assert list(options) == ["new_rate", "mode", "layers"]
    assert options["new_rate"].flags == ("--new-rate",)
    assert options["new_rate"].kwargs["help"] == "A brand-new knob, 50 %% by default."
    assert options["new_rate"].kwargs["type"]("none") is None
    assert options["new_rate"].kwargs["type"]("0.25") == 0.25
    assert options["mode"].kwargs["type"]("exact") == "exact"
    assert options["layers"].kwargs["help"] == "Layers."  # undocumented: still reachable

    class Unknowable(BaseEstimator):
        def __init__(self, *, hook: dict | None = None):
            self.hook = hook

    with pytest.raises(TypeError, match="hook.*NOT_ON_COMMAND_LINE"):
        estimator_options(Unknowable, exclude={}, aliases={}, defaults={})
    assert not estimator_options(Unknowable, exclude={"hook": "a dict"}, aliases={}, defaults={})


def test_numpydoc_parameters_are_read():
    docs = parse_parameters('''Summary.

    Parameters
    ----------
    a, b : float
        Two weights,
        on two lines.
    c : {"x", True} or None
        Choice.

    Returns
    -------
    int
    ''')
    assert list(docs) == ["a", "b", "c"]
    assert docs["b"].description == "Two weights, on two lines."
    assert docs["c"].choices == ("x", True, None)


def test_every_loader_parameter_is_an_option():
    import inspect

    from irfa_nwb.data.loader import load_dataset
    from irfa_nwb.data.sources import open_nwb

    names = {o.name for o in loader_options()}
    wanted = {n for n, p in inspect.signature(load_dataset).parameters.items()
              if p.kind is not p.VAR_KEYWORD} - set(LOADER_NOT_ON_COMMAND_LINE)
    wanted |= set(inspect.signature(open_nwb).parameters) - {"source"}
    assert wanted <= names, wanted - names
    parser = build_parser({"fit", "predict"})
    for argv in (["fit", "s.nwb", "r.nwb"], ["predict", "m", "s.nwb", "p.nwb"]):
        assert {f"load_{n}" for n in names} <= set(vars(parser.parse_args(argv)))


def test_loader_options_reach_load_dataset(session, tmp_path, monkeypatch):
    seen = {}

    def fake_fit(source, output, **kwargs):
        seen.update(kwargs)
        raise SystemError("stop here")

    monkeypatch.setattr("irfa_nwb.workflows.fit.fit_nwb", fake_fit)
    argv = ["fit", str(session), str(tmp_path / "r.nwb"), *TINY,
            "--windows", "V1=0,0.133", "V4=0.033,0.166", "--quality",
            '{"quality": "good", "amplitude_cutoff": ["<=", 0.1]}', "--bins", "3", "--rate",
            "--latency", "0.01", "--units", "1", "2", "--repeats", "average",
            "--resize-images", "32", "24", "--images", "a.png", "--images", "b.png",
            "--envelope-kwargs",
            '{"freq_min": 300}', "--retries", "5", "--keep-blank", "--presentations", "p",
            "--train-on", "presentations", "--test-size", "0.25", "--seed", "3"]
    assert main(argv) == EXIT_FAILURE
    load = seen["load_kwargs"]
    assert load["windows"] == {"V1": (0.0, 0.133), "V4": (0.033, 0.166)}
    assert load["quality"] == {"quality": "good", "amplitude_cutoff": ("<=", 0.1)}
    assert (load["bins"], load["rate"], load["latency"]) == (3, True, 0.01)
    assert load["units"] == (1, 2) and load["repeats"] == "average"
    assert load["image_size"] == (32, 24) and seen["model_kwargs"]["image_size"] == 16
    assert load["images"] == ["a.png", "b.png"] and load["envelope_kwargs"] == {"freq_min": 300}
    assert load["retries"] == 5 and load["keep_blank"] is True and load["presentations"] == "p"
    assert (seen["train_on"], seen["test_size"], seen["random_state"]) == ("presentations", 0.25, 3)
    assert seen["model_kwargs"]["random_state"] == 3
    defaults = _load_kwargs(_fit_args("--quality", "allen", "--images", "folder"))
    assert defaults["window"] == (0.0, 0.2) and defaults["responses"] == "auto"
    assert defaults["quality"] == "allen" and defaults["images"] == "folder"


def test_predict_takes_window_bins_latency_from_the_model_unless_given(tmp_path, monkeypatch):
    seen = {}

    def fake_predict(model, source, output, **kwargs):
        seen.update(kwargs)
        return Path(output)

    monkeypatch.setattr("irfa_nwb.workflows.fit.predict_nwb", fake_predict)
    argv = ["predict", "m.safetensors", "s.nwb", str(tmp_path / "p.nwb")]
    assert main(argv) == EXIT_OK
    assert not {"window", "bins", "latency"} & set(seen["load_kwargs"])
    assert seen["check_responses"] is True
    assert main([*argv, "--window", "0", "0.1", "--bins", "2", "--no-check-responses"]) == EXIT_OK
    assert seen["load_kwargs"]["window"] == (0.0, 0.1) and seen["load_kwargs"]["bins"] == 2
    assert seen["check_responses"] is False


# ----------------------------------------------------------------------------- exit statuses


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--channels", "7"], ["usage: irfa-nwb fit [options] source output", "--channels",
                               "even"]),
        (["--image-size", "10"], ["--image-size", "multiple of 4"]),
        (["--recipe", "nope"], ["--recipe", "invalid choice"]),
        (["--windows", "V1=0.2,0.1"], ["--windows", "STOP must be larger"]),
        (["--windows", "V1:0,1"], ["AREA=START,STOP"]),
        (["--window", "0.2", "0.1"], ["--window", "STOP must be larger"]),
        (["--quality", "{bad"], ["--quality", "allen"]),
        (["--quality", '{"amplitude_cutoff": ["~", 1]}'], ["OP one of"]),
        (["--test-size", "1.5"], ["--test-size", "between 0 and 1"]),
        (["--epochs", "many"], ["--max-iter", "invalid int value"]),
        (["--no-such-option"], ["unrecognized arguments"]),
    ],
)
def test_invalid_option_values_are_usage_errors(session, tmp_path, capsys, monkeypatch,
                                                extra, words):
    monkeypatch.setattr("irfa_nwb.workflows.fit.fit_nwb", pytest.fail)  # nothing may start
    out = tmp_path / "r.nwb"
    assert main(["fit", str(session), str(out), *extra]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("usage: irfa-nwb")  # fit's, or the top one for an unknown option
    for word in words:
        assert word in err, err
    assert not out.exists()


@pytest.mark.parametrize("argv", [["frobnicate"], ["fit", "only-a-source.nwb"], []])
def test_usage_errors_of_the_command_line(argv, capsys):
    assert main(argv) == EXIT_USAGE
    assert "usage: irfa-nwb" in capsys.readouterr().err


def test_run_time_failures_are_one_line_and_exit_1(session, tmp_path, capsys, monkeypatch):
    # an error of ours that is also a ValueError (was exit 2), one that is not (was exit 1) and
    # a plain bug: the same status, one line each
    argv = ["fit", str(session), str(tmp_path / "r.nwb"), *TINY, "--epochs", "1"]
    assert main([*argv, "--windows", "V9=0,0.1"]) == EXIT_FAILURE
    line = _error_line(capsys.readouterr().err)
    assert "windows are given for areas ['V9']" in line and "V1" in line
    assert line.endswith("(--verbose shows the traceback)")
    assert main([*argv, "--presentations", "nope"]) == EXIT_FAILURE
    assert "no stimulus series or interval table named 'nope'" in _error_line(
        capsys.readouterr().err)

    def bug(*args, **kwargs):
        raise KeyError("column")

    monkeypatch.setattr("irfa_nwb.workflows.fit.fit_nwb", bug)
    assert main(argv) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert _error_line(err) == (
        "irfa-nwb: error: KeyError: 'column' (--verbose shows the traceback)")
    assert len(err.splitlines()) == 1


def test_error_messages_are_collapsed_to_one_line():
    from irfa_nwb.errors import InputError

    assert error_message(InputError("first\n  second")) == "first second"
    assert error_message(RuntimeError()) == "RuntimeError"


# ----------------------------------------------------------------------------- missing weights


def test_missing_weights_message_gives_the_command_line_fix(session, tmp_path, capsys,
                                                            empty_torch_home):
    # the published perceptual loss; no weights cached and IRFA_NWB_OFFLINE set (conftest)
    argv = ["fit", str(session), str(tmp_path / "r.nwb"), "--image-size", "16", "--width", "8",
            "--channels", "8", "--epochs", "1"]
    assert main(argv) == EXIT_FAILURE
    line = _error_line(capsys.readouterr().err)
    assert "--perceptual-weight 0" in line and "--allow-download" in line
    assert "IRFA(" not in line and "allow_download=" not in line
    assert str(empty_torch_home) in line  # where the weights go


def test_missing_weights_advice_per_command():
    from irfa_nwb.errors import MissingWeightsError

    err = MissingWeightsError(
        "Pretrained vgg19 weights are not on this machine (expected /x/vgg.pth). Fetch them "
        "... or allow downloads here (allow_download=True, with IRFA_NWB_OFFLINE unset), or "
        "train without the perceptual term: IRFA(perceptual_weight=0)."
    )
    demo = error_message(err, "demo")
    assert "(unset IRFA_NWB_OFFLINE)" in demo and "--perceptual off" in demo
    assert "IRFA(" not in demo and "allow_download" not in demo
    reworded = error_message(MissingWeightsError("No VGG19 here."), "fit")
    assert reworded == ("No VGG19 here. On the command line: --perceptual-weight 0 trains "
                        "without the perceptual loss (no pretrained weights).")


# ----------------------------------------------------------------------------- inspect


def _fit_command(out: str) -> list[str]:
    lines = out.rstrip("\n").splitlines()
    at = lines.index("fit it with:")
    assert all(line.startswith("  (") for line in lines[at + 2:])  # the summary ends with it
    return shlex.split(lines[at + 1])


def test_inspect_says_what_can_be_fitted_and_its_command_runs(session, tmp_path, capsys,
                                                              monkeypatch):
    import irfa_nwb

    assert main(["inspect", str(session)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "file check: OK, every dataset read completely" in out
    ds = irfa_nwb.load_dataset(session, images=False)
    areas = ds["area"].to_series().value_counts()
    groups = ds["electrode_group"].to_series().value_counts()
    summary = out[out.index("what can be fitted:"):]
    assert f"{ds.sizes['unit']} usable units" in summary
    assert "by area: " + ", ".join(f"{a} {areas[a]}" for a in ("V1", "V4", "IT")) in summary
    assert f"(IRFA heads, {len(groups)})" in summary and f"V1_a1 {groups['V1_a1']}" in summary
    assert "stimuli: IndexSeries stimulus/natural_image_presentations" in summary
    assert "images: in the file" in summary
    command = _fit_command(out)
    assert command[:4] == ["irfa-nwb", "fit", str(session), "session_irfa.nwb"]
    assert command[4:] == ["--presentations", "natural_image_presentations",
                           "--responses", "units"]
    # the printed command runs as printed (a tiny model and another output path added)
    results = tmp_path / "session_irfa.nwb"
    monkeypatch.chdir(tmp_path)
    assert main([*command[1:], *TINY, "--epochs", "1", "-q"]) == EXIT_OK
    assert results.is_file() and results.with_suffix(".safetensors").is_file()


def test_inspect_lists_series_responses(mua_session, capsys):
    assert main(["inspect", str(mua_session)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "--responses processing/ecephys/MUA: ElectricalSeries, 192 channels, usable" in out
    assert _fit_command(out)[-2:] == ["--responses", "processing/ecephys/MUA"]


def test_inspect_allen_layout_needs_images_and_quality(tmp_path, capsys):
    from data_helpers import allen_coding_file

    path = allen_coding_file(tmp_path / "allen.nwb")["path"]
    assert main(["inspect", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "2 of 5 pass the AllenSDK quality filters (--quality allen)" in out
    assert "by area: VISp 1, VISl 1" in out
    assert "images: NOT in the file" in out and "(pass --images)" in out
    assert "images=" not in out  # the Python spelling
    command = _fit_command(out)
    assert command[4:] == ["--presentations", "natural_scenes_presentations", "--responses",
                           "units", "--quality", "allen", "--images", "IMAGES"]


def test_inspect_reports_a_damaged_file_and_exits_1(session, tmp_path, capsys):
    import h5py

    from irfa_nwb.data import load_dataset

    with h5py.File(session, "r") as f:
        chunk = f["units/spike_times"].id.get_chunk_info(0)
    data = bytearray(session.read_bytes())
    data[chunk.byte_offset + chunk.size // 2] ^= 0xFF  # inside the compressed spike times
    damaged = tmp_path / "damaged.nwb"
    damaged.write_bytes(bytes(data))
    assert main(["inspect", str(damaged)]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert "DAMAGED" in captured.out and "/units/spike_times" in captured.out
    assert "what can be fitted" not in captured.out and "fit it with" not in captured.out
    line = _error_line(captured.err)
    assert f"{damaged} is damaged: 1 object(s) cannot be read: /units/spike_times" in line
    with pytest.raises(Exception):  # noqa: B017 - the damage is real: reading it fails
        load_dataset(damaged)

    empty = tmp_path / "empty.nwb"
    empty.write_bytes(b"")
    assert main(["inspect", str(empty)]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert "UNREADABLE" in captured.out and "is unreadable" in _error_line(captured.err)


def test_inspect_verification_options(session, capsys):
    import hashlib

    assert main(["inspect", str(session), "--no-verify"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "file check: skipped (--no-verify)" in out and "fit it with:" in out
    digest = hashlib.sha256(session.read_bytes()).hexdigest()
    assert main(["inspect", str(session), "--sha256", digest]) == EXIT_OK
    assert "file check: OK" in capsys.readouterr().out
    assert main(["inspect", str(session), "--sha256", "0" * 64]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert "DOES NOT match" in captured.out and "fit it with" not in captured.out
    assert "SHA-256 does not match" in _error_line(captured.err)
    assert main(["inspect", str(session), "--sha256", digest, "--no-verify"]) == EXIT_USAGE


# ----------------------------------------------------------------------------- outputs


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if any data is loaded or any model trained."""
    import irfa_nwb
    from irfa_nwb.estimator.irfa import IRFA

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the output paths were checked")

    monkeypatch.setattr(irfa_nwb, "load_dataset", forbidden)
    monkeypatch.setattr(IRFA, "fit", forbidden)


def test_fit_into_a_missing_folder_fails_before_any_work(session, tmp_path, capsys, no_work):
    out = tmp_path / "nowhere" / "r.nwb"
    assert main(["fit", str(session), str(out), *TINY]) == EXIT_FAILURE
    line = _error_line(capsys.readouterr().err)
    assert f"folder {out.parent} does not exist" in line


def test_fit_does_not_overwrite_without_asking(session, tmp_path, capsys, no_work):
    results = tmp_path / "r.nwb"
    results.write_bytes(b"old")
    assert main(["fit", str(session), str(results), *TINY]) == EXIT_FAILURE
    line = _error_line(capsys.readouterr().err)
    assert f"results file {results} already exists" in line and "--overwrite" in line
    assert results.read_bytes() == b"old" and not results.with_suffix(".safetensors").exists()
    # the model path is checked too, before anything else
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"old model")
    assert main(["fit", str(session), str(tmp_path / "new.nwb"), "--model", str(model),
                 *TINY]) == EXIT_FAILURE
    assert f"model file {model} already exists" in _error_line(capsys.readouterr().err)
    assert model.read_bytes() == b"old model" and not (tmp_path / "new.nwb").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="permissions do not apply to root")
def test_fit_into_a_read_only_folder_fails_before_any_work(session, tmp_path, capsys, no_work):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["fit", str(session), str(folder / "r.nwb"), *TINY]) == EXIT_FAILURE
    finally:
        folder.chmod(0o755)
    line = _error_line(capsys.readouterr().err)
    assert f"folder {folder} is not writable" in line
    assert not any(folder.iterdir())


def test_predict_into_a_missing_folder_fails_before_reading(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("irfa_nwb.load_model", pytest.fail)
    out = tmp_path / "nowhere" / "p.nwb"
    assert main(["predict", "m.safetensors", "s.nwb", str(out)]) == EXIT_FAILURE
    assert f"folder {out.parent} does not exist" in _error_line(capsys.readouterr().err)


def test_fit_predict_report(session, tmp_path, capsys):
    from irfa_nwb import load_model

    results = tmp_path / "results.nwb"
    args = ["--quiet", "fit", str(session), str(results), "--epochs", "1", *TINY,
            "--attention-lr", "0.005"]
    assert main(args) == EXIT_OK
    model = results.with_suffix(".safetensors")
    assert results.is_file() and model.is_file()
    fitted = load_model(model)
    assert fitted.attention_lr == 0.005 and fitted.adversarial_weight == 0.0
    assert fitted.n_iter_ == 1 and fitted.interrupted_ is False
    # refuses to overwrite without --overwrite: one clear line, a failure (not a usage error)
    capsys.readouterr()
    assert main(args) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "exists" in _error_line(err) and "Traceback" not in err
    predictions = tmp_path / "predictions.nwb"
    assert main(["--quiet", "predict", str(model), str(session), str(predictions)]) == EXIT_OK
    assert predictions.is_file()
    figures = tmp_path / "figs"
    assert main(["report", str(results), "--out", str(figures)]) == EXIT_OK
    assert any(p.suffix == ".png" for p in figures.iterdir())


# ----------------------------------------------------------------------------- Ctrl-C


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_saves_the_last_finished_epoch_and_exits_130(session, tmp_path):
    from irfa_nwb import load_model

    results = tmp_path / "r.nwb"
    model_path = tmp_path / "r.safetensors"
    command = [sys.executable, "-m", "irfa_nwb.cli.main", "fit", str(session), str(results),
               *TINY, "--epochs", "1000"]
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    # a shell that started us in the background may have left SIGINT ignored: the child must
    # see Python's usual KeyboardInterrupt, as at a terminal
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    try:
        while True:  # wait for the log line of the first finished epoch
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            if line.startswith("epoch 1/1000"):
                break
        process.send_signal(signal.SIGINT)
        err = process.stderr.read()
        status = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert status == EXIT_INTERRUPTED, err
    model = load_model(model_path)
    assert model.interrupted_ is True and model.n_iter_ >= 1
    message = [x for x in err.splitlines() if x.startswith("irfa-nwb: interrupted")]
    assert message == [
        f"irfa-nwb: interrupted: {model_path} holds the model after epoch {model.n_iter_} of "
        f"1000 ({model.n_iter_} finished epoch{'s' if model.n_iter_ > 1 else ''}); no results "
        "file was written"
    ]
    assert not results.exists()
    assert len(model.history_) == model.n_iter_
    assert np.isfinite([h["loss_generator"] for h in model.history_]).all()


def test_fit_resumes_from_its_checkpoint(session, tmp_path):
    from irfa_nwb import load_model

    ckpt = tmp_path / "ckpt.safetensors"
    first = ["fit", str(session), str(tmp_path / "r.nwb"), *TINY, "--epochs", "1",
             "--checkpoint-path", str(ckpt), "-q"]
    assert main(first) == EXIT_OK and load_model(ckpt).n_iter_ == 1
    resumed = ["fit", str(session), str(tmp_path / "r2.nwb"), *TINY, "--epochs", "2",
               "--checkpoint-path", str(ckpt), "--resume", str(ckpt), "-q"]
    assert main(resumed) == EXIT_OK
    model = load_model(tmp_path / "r2.safetensors")
    assert model.n_iter_ == 2 and [h["epoch"] for h in model.history_] == [1, 2]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_fit_after_ctrl_c_resumes_with_the_same_command_and_resume(session, tmp_path,
                                                                   monkeypatch):
    """The documented flow: Ctrl-C saves the model of the last finished epoch; the same command
    with --resume replaces that model (no --overwrite needed) and finishes the fit."""
    from irfa_nwb import load_model
    from irfa_nwb.estimator import _training

    original = _training.TrainingStep.__call__
    calls = {"n": 0}

    def interrupt_in_epoch_2(self, inputs, target, batch_index=0):
        calls["n"] += 1
        if calls["n"] == 7:  # 5 batches per epoch (40 training stimuli, batch 8)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, inputs, target, batch_index)

    results, ckpt = tmp_path / "r.nwb", tmp_path / "ckpt.safetensors"
    model_path = results.with_suffix(".safetensors")
    args = ["fit", str(session), str(results), *TINY, "--epochs", "2", "--checkpoint-path",
            str(ckpt), "-q"]
    monkeypatch.setattr(_training.TrainingStep, "__call__", interrupt_in_epoch_2)
    assert main(args) == EXIT_INTERRUPTED
    assert load_model(model_path).interrupted_ and not results.exists()
    monkeypatch.setattr(_training.TrainingStep, "__call__", original)
    assert main([*args, "--resume", str(ckpt)]) == EXIT_OK
    model = load_model(model_path)
    assert not model.interrupted_ and model.n_iter_ == 2 and results.is_file()
    # a finished model is not replaced without --overwrite, resuming or not
    results.unlink()
    assert main([*args, "--resume", str(ckpt)]) == EXIT_FAILURE
    assert not results.exists()


def test_compare_writes_the_comparison_and_prints_it(session, tmp_path, capsys):
    from irfa_nwb import read_results

    out = tmp_path / "comparison.nwb"
    argv = ["compare", str(session), str(out), *TINY, "--epochs", "1", "--seeds", "0", "1",
            "--n-bootstrap", "200", "-q"]
    assert main(argv) == EXIT_OK
    printed = capsys.readouterr().out
    assert "IRFA - ridge" in printed and "pixel r" in printed and "verdict" in printed
    back = read_results(out)
    assert list(back["model"].values) == ["IRFA", "ridge"]
    assert list(back["seed"].values) == [0, 1]
    assert (tmp_path / "comparison_comparison.png").is_file()
