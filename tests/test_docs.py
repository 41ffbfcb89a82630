"""The documentation says what the code does: API reference, examples and code snippets.

- ``docs/api.md`` names every public name, and its IRFA parameter table is ``get_params()``;
- every example runs (at tiny sizes, ``IRFA_EXAMPLE_TINY=1``) or, when it needs data that is
  not here, compiles and uses only names and keywords that exist;
- the ``python`` blocks of ``docs/user_guide.md`` and ``README.md`` run, in order and in one
  namespace per file, in a folder holding a small simulated ``session.nwb``, with
  ``irfa_nwb.IRFA`` replaced by a subclass that trains tiny networks for one epoch whatever the
  block asks for. A block preceded by ``<!-- doc-test: skip (reason) -->`` is not run, but must
  compile and pass the same name checks.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import os
import py_compile
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
API = DOCS / "api.md"
GUIDE = DOCS / "user_guide.md"
README = ROOT / "README.md"

#: modules whose public names docs/api.md must mention (``__all__``, or the public classes and
#: functions defined in a module without one)
DOCUMENTED_MODULES = (
    "irfa_nwb.data",
    "irfa_nwb.data.tvsd",
    "irfa_nwb.estimator",
    "irfa_nwb.estimator.distributed",
    "irfa_nwb.estimator.ridge",
    "irfa_nwb.analysis",
    "irfa_nwb.analysis.alexnet",
    "irfa_nwb.analysis.clustering",
    "irfa_nwb.analysis.compare",
    "irfa_nwb.analysis.evaluate",
    "irfa_nwb.analysis.fields",
    "irfa_nwb.analysis.figures",
    "irfa_nwb.analysis.metrics",
    "irfa_nwb.analysis.nsd_metrics",
    "irfa_nwb.results",
    "irfa_nwb.simulation",
    "irfa_nwb.workflows.compare",
    "irfa_nwb.workflows.demo",
    "irfa_nwb.workflows.fit",
    "irfa_nwb.workflows.report",
    "irfa_nwb.stats",
    "irfa_nwb.imaging",
    "irfa_nwb.errors",
)

#: attribute names of objects the checks cannot resolve statically (methods) that are deprecated
DEPRECATED_METHODS = {"spatial_fields", "feature_fields", "n_epochs_"}
#: deprecated keyword arguments: (callable, keyword)
DEPRECATED_KEYWORDS = {("IRFA", "epochs"), ("IRFA", "num_workers"), ("fit", "groups")}

#: what the doc snippets' IRFA is forced to, whatever a snippet passes
TINY_IRFA = dict(image_size=16, channels=4, width=8, max_iter=1, perceptual_weight=0.0,
                 device="cpu", verbose=0, allow_download=False, distributed=False)


# ----------------------------------------------------------------------------- helpers
def _env(**extra: str) -> dict[str, str]:
    """Environment of a subprocess: this checkout first on the path, one thread, offline."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "IRFA_NWB_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore", **extra}


def _code_spans(text: str) -> set[str]:
    """Every identifier that appears inside inline code or a fenced block of a markdown text."""
    spans = re.findall(r"```.*?```", text, flags=re.S) + re.findall(r"`[^`\n]+`", text)
    return {word for span in spans for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span)}


def _public_names(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name for name, obj in vars(module).items()
        if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == module_name
    ]


def _top_level_names() -> list[str]:
    stub = (ROOT / "irfa_nwb" / "__init__.pyi").read_text()
    return re.findall(r"^from \S+ import \w+ as (\w+)$", stub, flags=re.M)


@dataclass
class Block:
    path: Path
    line: int  # line of the opening fence
    code: str
    skip: str | None  # reason, when marked <!-- doc-test: skip (reason) -->

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


_SKIP = re.compile(r"<!--\s*doc-test:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->")


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a markdown file, with the skip marker that precedes each."""
    lines = path.read_text().splitlines()
    blocks, k = [], 0
    while k < len(lines):
        fence = lines[k].strip()
        if fence.startswith("```"):
            lang, start = fence[3:].strip().lower(), k
            k += 1
            body = []
            while k < len(lines) and not lines[k].strip().startswith("```"):
                body.append(lines[k])
                k += 1
            if lang in ("python", "py"):
                before = [ln for ln in lines[:start] if ln.strip()]
                mark = _SKIP.search(before[-1]) if before else None
                blocks.append(Block(path, start + 1, "\n".join(body) + "\n",
                                    mark.group("reason") if mark else None))
        k += 1
    return blocks


# ----------------------------------------------------------------------------- name checks
def _resolve(dotted: str):
    """The object named ``irfa_nwb.a.b.c``, and whether getting it warned of a deprecation."""
    parts = dotted.split(".")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr)  # AttributeError: the name does not exist
            break
    warned = any(issubclass(w.category, FutureWarning | DeprecationWarning) for w in caught)
    doc = (inspect.getdoc(obj) or "").split("\n")[0].lower() if callable(obj) else ""
    return obj, warned or doc.startswith("deprecated")


def check_irfa_names(code: str, where: str) -> list[str]:
    """Problems with the irfa_nwb names a piece of code uses.

    Every ``irfa_nwb...`` module, attribute and imported name must exist and not be
    deprecated; every call of a resolved irfa_nwb callable must bind to its signature (unknown
    or missing arguments), and deprecated keywords / methods must not be used.
    """
    tree = ast.parse(code, filename=where)
    aliases: dict[str, str] = {}  # local name -> dotted irfa_nwb name
    problems: list[str] = []

    def note(node: ast.AST, text: str) -> None:
        problems.append(f"{where} (code line {getattr(node, 'lineno', '?')}): {text}")

    def check(dotted: str, node: ast.AST):
        try:
            obj, deprecated = _resolve(dotted)
        except AttributeError:
            note(node, f"{dotted} does not exist")
            return None
        if deprecated:
            note(node, f"{dotted} is deprecated")
        return obj

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "irfa_nwb":
                    check(a.name, node)
                    aliases[a.asname or a.name.split(".")[0]] = a.asname and a.name or "irfa_nwb"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "irfa_nwb":
            for a in node.names:
                dotted = f"{node.module}.{a.name}"
                if check(dotted, node) is not None:
                    aliases[a.asname or a.name] = dotted

    def dotted_name(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = dotted_name(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    resolved: dict[int, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in DEPRECATED_METHODS:
                note(node, f".{node.attr} is deprecated")
            dotted = dotted_name(node)
            if dotted and not isinstance(getattr(node, "ctx", None), ast.Store):
                obj = check(dotted, node)
                if obj is not None:
                    resolved[id(node)] = obj
        elif isinstance(node, ast.Name) and node.id in aliases:
            resolved[id(node)] = _resolve(aliases[node.id])[0]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        for kw in node.keywords:
            if (name, kw.arg) in DEPRECATED_KEYWORDS:
                note(node, f"{name}({kw.arg}=...) is deprecated")
        obj = resolved.get(id(node.func))
        if obj is None or not callable(obj) or inspect.ismodule(obj):
            continue
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
                kw.arg is None for kw in node.keywords):
            continue
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        try:
            signature.bind(*node.args, **{kw.arg: kw.value for kw in node.keywords})
        except TypeError as err:
            note(node, f"{ast.unparse(node.func)}(...): {err}")
    return problems


# ----------------------------------------------------------------------------- api.md
def test_api_reference_names_every_public_name():
    text = API.read_text()
    mentioned = _code_spans(text)
    missing = [f"irfa_nwb.{n}" for n in _top_level_names() if n not in mentioned]
    for module in DOCUMENTED_MODULES:
        missing += [f"{module}.{n}" for n in _public_names(module) if n not in mentioned]
    assert not missing, f"docs/api.md does not mention: {missing}"


def test_api_reference_marks_deprecated_names():
    """Every deprecated name is mentioned in api.md on a line that says it is deprecated."""
    import irfa_nwb

    names = [*irfa_nwb._DEPRECATED_FUNCTIONS, *irfa_nwb._MOVED, "spatial_fields",
             "feature_fields", "n_epochs_", "epochs", "num_workers", "TVSD_ARRAY_AREAS_N"]
    lines = API.read_text().splitlines()
    for name in names:
        marked = [ln for ln in lines if re.search(rf"`[^`]*\b{name}\b[^`]*`", ln)
                  and "deprecated" in ln.lower()]
        assert marked, f"api.md does not mark {name} as deprecated"


def _api_irfa_parameters() -> dict[str, object]:
    text = API.read_text()
    block = re.search(r"<!-- irfa-parameters: begin -->(.*?)<!-- irfa-parameters: end -->",
                      text, flags=re.S)
    assert block, "docs/api.md lacks the <!-- irfa-parameters: begin/end --> block"
    params = {}
    for row in block.group(1).splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)`", cells[0]) if row.startswith("|") else None
        if not match:
            continue
        default = re.fullmatch(r"`(.*)`", cells[1])
        assert default, f"api.md: the default of {match.group(1)} is not in backticks"
        params[match.group(1)] = ast.literal_eval(default.group(1))
    return params


def test_api_reference_irfa_parameters_are_get_params():
    from irfa_nwb import IRFA

    documented = _api_irfa_parameters()
    actual = IRFA().get_params()
    assert list(documented) == list(inspect.signature(IRFA).parameters)  # same order
    assert documented == actual


def _documented_signatures() -> list[tuple[str, str, str, int]]:
    """``(module, name, parameters, line)`` of every ``name(parameters)`` code span in the first
    column of a table of api.md; the module is the last one named in a heading."""
    module, found = None, []
    for number, line in enumerate(API.read_text().splitlines(), 1):
        if line.startswith("#"):
            named = re.search(r"`(irfa_nwb(?:\.\w+)*)`", line)
            module = named.group(1) if named else module
        elif line.startswith("|") and module:
            first = line.strip().strip("|").split("|")[0]
            for span in re.findall(r"`([^`]+)`", first):
                call = re.fullmatch(r"([A-Za-z_][\w.]*)\((.*)\)", span.strip())
                if call:
                    found.append((module, call.group(1), call.group(2), number))
    return found


def _parameters(text: str, namespace: dict) -> list[tuple[str, str, object]]:
    """``(name, kind, default)`` of a parameter list written as Python."""
    args = ast.parse(f"def f({text}): pass").body[0].args
    out = []
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, defaults, strict=True):
        out.append((arg.arg, "positional", _value(default, namespace)))
    if args.vararg:
        out.append((args.vararg.arg, "*args", inspect.Parameter.empty))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        out.append((arg.arg, "keyword", _value(default, namespace)))
    if args.kwarg:
        out.append((args.kwarg.arg, "**kwargs", inspect.Parameter.empty))
    return out


def _value(node, namespace: dict):
    if node is None:
        return inspect.Parameter.empty
    return eval(compile(ast.Expression(node), "<api.md>", "eval"), dict(namespace))


_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: "positional",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
    inspect.Parameter.VAR_POSITIONAL: "*args",
    inspect.Parameter.KEYWORD_ONLY: "keyword",
    inspect.Parameter.VAR_KEYWORD: "**kwargs",
}


def test_api_reference_signatures_are_the_real_ones():
    documented = _documented_signatures()
    assert len(documented) > 100
    wrong = []
    for module, name, text, line in documented:
        try:
            obj, _ = _resolve(f"{module}.{name}")
        except AttributeError:
            wrong.append(f"api.md:{line}: {module}.{name} does not exist")
            continue
        if text == "...":  # IRFA: its parameters have their own table
            assert name == "IRFA", f"api.md:{line}: only IRFA may elide its parameters"
            continue
        real = inspect.signature(obj)
        params = list(real.parameters.values())
        if inspect.isfunction(obj) and "." in name and params and params[0].name == "self":
            params = params[1:]
        namespace = {**vars(inspect.getmodule(obj)), **vars(importlib.import_module(module))}
        actual = [(p.name, _KINDS[p.kind], p.default) for p in params]
        written = _parameters(text, namespace)
        if written != actual:
            wrong.append(f"api.md:{line}: {name}({text})\n    is {name}{real}")
    assert not wrong, "\n".join(wrong)


def _slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("path", [API, GUIDE, README], ids=lambda p: p.name)
def test_links_between_documents_resolve(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(target)
    assert not broken, f"{path.name}: broken links {broken}"


# ----------------------------------------------------------------------------- examples
def _example(name: str) -> Path:
    return EXAMPLES / name


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_example_compiles_and_uses_existing_names(path, tmp_path):
    py_compile.compile(str(path), cfile=str(tmp_path / "example.pyc"), doraise=True)
    assert check_irfa_names(path.read_text(), path.name) == []


def test_slurm_example_is_valid_bash_with_c10d_rendezvous():
    script = _example("slurm_two_nodes.sh")
    bash = shutil.which("bash")
    if bash:
        done = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    text = script.read_text()
    assert "--rdzv-backend c10d" in text and "--nnodes 2" in text
    assert "examples/06_torchrun_multi_gpu.py" in text


def _run_example(args: list[str], cwd: Path, timeout: int = 180) -> str:
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=_env(IRFA_EXAMPLE_TINY="1"),
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_examples_01_quickstart_and_05_results_run(tmp_path):
    out = tmp_path / "quickstart"
    stdout = _run_example([str(_example("01_quickstart_simulated.py")), str(out)], tmp_path)
    assert "held-out pixel correlation" in stdout
    for name in ("session.nwb", "model.safetensors", "results.nwb", "figures/summary.txt"):
        assert (out / name).is_file(), name
    stdout = _run_example([str(_example("05_results_and_analyses.py")),
                           str(out / "results.nwb"), str(tmp_path / "report")], tmp_path)
    assert "clusters" in stdout
    assert (tmp_path / "report" / "reconstructions.png").is_file()


def test_example_02_numpy_arrays_runs(tmp_path):
    stdout = _run_example([str(_example("02_numpy_arrays.py")), str(tmp_path)], tmp_path)
    assert "saved and reloaded" in stdout
    assert (tmp_path / "numpy_model.safetensors").is_file()


def _torch_distributed_ok() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


_needs_gloo = pytest.mark.skipif(not _torch_distributed_ok(),
                                 reason="needs torch.distributed with gloo")
EXAMPLE_06 = str(EXAMPLES / "06_torchrun_multi_gpu.py")


@_needs_gloo
def test_example_06_under_torchrun_two_cpu_processes(tmp_path):
    out = tmp_path / "run"
    stdout = _run_example(["-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                           "2", EXAMPLE_06, "-", str(out)], tmp_path, timeout=300)
    assert stdout.count("rank 0:") == 1  # only rank 0 writes and reports
    assert "rank 0: 2 epochs" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.safetensors", "model.safetensors", "results.nwb"]


@pytest.mark.slow
@_needs_gloo
def test_example_06_on_two_nodes_with_c10d_rendezvous_then_resume(tmp_path):
    """What slurm_two_nodes.sh runs, with both "nodes" on this machine: two torchrun launchers
    of one process each meet through the c10d rendezvous; a second job resumes."""
    import socket

    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
                "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
                f"127.0.0.1:{port}", "--rdzv-id", "doc-test", EXAMPLE_06, "-", str(out)]
    nodes = [subprocess.Popen(launcher, cwd=tmp_path, env=_env(IRFA_EXAMPLE_TINY="1"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (stdout, stderr) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, stdout[-2000:] + stderr[-4000:]
    assert "".join(o[0] for o in outputs).count("rank 0:") == 1
    assert (out / "results.nwb").is_file() and (out / "checkpoint.safetensors").is_file()
    # a requeued job: --resume continues from the checkpoint (here: already finished)
    stdout = _run_example(["-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                           "2", EXAMPLE_06, "-", str(out), "--resume"], tmp_path, timeout=300)
    assert "rank 0: 2 epochs" in stdout


# ----------------------------------------------------------------------------- snippets
@pytest.mark.parametrize("path", [GUIDE, README], ids=lambda p: p.name)
def test_doc_snippets_compile_and_use_existing_names(path):
    blocks = python_blocks(path)
    assert blocks, f"{path.name} has no python blocks"
    problems = []
    for block in blocks:
        compile(block.code, block.where, "exec")
        problems += check_irfa_names(block.code, block.where)
    assert problems == []


def test_skip_markers_give_a_reason():
    for path in (GUIDE, README):
        for block in python_blocks(path):
            if block.skip is not None:
                assert block.skip.strip(), f"{block.where}: skip marker without a reason"


@pytest.fixture(scope="module")
def _session_file(tmp_path_factory):
    from irfa_nwb import write_simulated_recording

    folder = tmp_path_factory.mktemp("doc_session")
    return write_simulated_recording(folder / "session.nwb", n_stimuli=48, n_test=8,
                                     n_repeats=3, image_size=16, random_state=0)


@pytest.fixture
def doc_folder(_session_file, tmp_path, monkeypatch):
    """A working folder with session.nwb (and the names the snippets read), a tiny IRFA, one
    thread, no downloads."""
    import torch
    from threadpoolctl import threadpool_limits

    import irfa_nwb
    import irfa_nwb.estimator
    from irfa_nwb.estimator import IRFA

    class TinyIRFA(IRFA):
        """IRFA that trains a tiny network for one epoch, whatever it was asked for."""

        def fit(self, X, y, groups=None, *, resume_from=None):
            self.set_params(**TINY_IRFA, batch_size=min(self.batch_size, 16))
            return super().fit(X, y, groups, resume_from=resume_from)

    for name in ("session.nwb", "sub-1_ses-1.nwb"):  # sub-1_ses-1.nwb: Reliability's example
        shutil.copy(_session_file, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(irfa_nwb, "IRFA", TinyIRFA)
    monkeypatch.setattr(irfa_nwb.estimator, "IRFA", TinyIRFA)
    monkeypatch.setenv("IRFA_NWB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    threads = torch.get_num_threads()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level  # snippets may call basicConfig
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the snippets' output is not under test here
            yield tmp_path
    finally:
        torch.set_num_threads(threads)
        root.handlers[:] = handlers
        root.setLevel(level)


def _run_blocks(path: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {"__name__": "__doc_snippets__"}
    ran = 0
    for block in python_blocks(path):
        if block.skip is not None:
            continue
        try:
            exec(compile(block.code, block.where, "exec"), namespace)
        except Exception as err:  # name the block that failed
            raise AssertionError(f"{block.where}: {type(err).__name__}: {err}") from err
        ran += 1
    import matplotlib.pyplot as plt

    plt.close("all")
    return ran


def test_user_guide_snippets_run(doc_folder):
    assert _run_blocks(GUIDE) >= 8


def test_readme_snippets_run(doc_folder):
    assert _run_blocks(README) >= 1
